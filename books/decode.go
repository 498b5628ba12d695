package books

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// maxBodyBytes is the largest request body the service reads (1 MiB).
const maxBodyBytes = 1 << 20

// decode reads the request body into v, a pointer to a struct, holding it
// to the contract's rules. Every failure is an *apiError with a 4xx
// status, so no input can reach a 500:
//
//   - a Content-Type other than application/json → 415 (parameters are
//     allowed; a charset other than UTF-8 is not); no Content-Type is JSON;
//   - more than 1 MiB → 413;
//   - anything but exactly one JSON object → 400 (trailing text included);
//   - a field v does not have → 400 (names match exactly, not ignoring case
//     as encoding/json does);
//   - a null field or a value of the wrong type → 400.
//
// Fields that are absent are left alone; v's fields are pointers when the
// caller needs to tell absent from zero.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
				description: fmt.Sprintf("The request body is larger than %d bytes.", maxBodyBytes)}
		}
		return badRequest("The request body could not be read.")
	}
	return decodeBytes(body, v)
}

func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		description: "The request body must be JSON in UTF-8, sent with Content-Type: application/json."}
}

// decodeBytes is decode after the HTTP checks; the fuzz target drives it.
func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("The request body is empty; a JSON object is required.")
	}
	if !json.Valid(body) {
		// json.Valid also fails on text after the first value.
		return badRequest("The request body is not valid JSON, or has text after the JSON value.")
	}
	// A first pass into raw fields catches what encoding/json would
	// silently accept: a top-level null, names differing only in case, and
	// null values (which it treats as "leave the field alone").
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return badRequest("The request body must be a JSON object.")
	}
	known := jsonFields(reflect.TypeOf(v).Elem())
	for name, val := range raw {
		if _, ok := known[name]; !ok {
			return badRequest(fmt.Sprintf("Unknown field %q; allowed fields are %s.", name, fieldList(known)))
		}
		if string(val) == "null" {
			return badRequest(fmt.Sprintf("Field %q must not be null.", name))
		}
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return badRequest(fmt.Sprintf("Field %q must be %s.", te.Field, known[te.Field]))
		}
		return badRequest("The request body does not have the expected shape.")
	}
	if dec.More() {
		return badRequest("The request body has text after the JSON object.")
	}
	return nil
}

// jsonFields maps the JSON names of struct type t's fields to a phrase
// naming the kind of value each takes, for error descriptions.
func jsonFields(t reflect.Type) map[string]string {
	fields := make(map[string]string, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.String:
			fields[name] = "a string"
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			fields[name] = "an integer"
		case reflect.Bool:
			fields[name] = "true or false"
		default:
			fields[name] = "a " + ft.Kind().String()
		}
	}
	return fields
}

func fieldList(fields map[string]string) string {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names) // the same description on every request
	return strings.Join(names, ", ")
}

// encode writes v as JSON with the given status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
