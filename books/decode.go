package books

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxBodyBytes is the largest request body the service reads (1 MiB).
const maxBodyBytes = 1 << 20

// decode reads the request body into v, a pointer to a struct, holding it
// to the contract's common rules. Every failure is an *apiError with a 4xx
// status, so no input can reach a 500:
//
//   - a Content-Type other than application/json → 415 (parameters are
//     allowed; a charset other than UTF-8 is not); no Content-Type is JSON;
//   - more than 1 MiB → 413;
//   - bytes that are not UTF-8 → 400: encoding/json would turn them into
//     U+FFFD, so two different passwords could read the same;
//   - anything but exactly one JSON object → 400 (trailing text included);
//   - a field v does not have → 400 (names match exactly, not ignoring case
//     as encoding/json does);
//   - a null field or a value of the wrong type → 400.
//
// Fields that are absent are left alone; v's fields are pointers when the
// caller needs to tell absent from zero.
//
// server/decode.go is this function's twin, kept apart so that books can be
// copied out of the module; internal/decodetest runs one table of bodies
// against both, descriptions included, so change them together.
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

// checkContentType accepts application/json with any parameters but a
// charset other than UTF-8, and no Content-Type at all.
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		// JSON is UTF-8 (RFC 8259): a body declared in another charset
		// would be read as something its sender did not mean.
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
	if !utf8.Valid(body) {
		return badRequest("The request body is not valid UTF-8.")
	}
	if !json.Valid(body) {
		// json.Valid also fails on text after the first value, so the
		// decoding below sees exactly one.
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
	// In name order, so that a body with several faults always gets the
	// same answer.
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if _, ok := known[name]; !ok {
			return badRequest(fmt.Sprintf("Unknown field %q; allowed fields are %s.", name, fieldList(known)))
		}
		if string(raw[name]) == "null" {
			return badRequest(fmt.Sprintf("Field %q must not be null.", name))
		}
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			if kind, ok := known[te.Field]; ok {
				return badRequest(fmt.Sprintf("Field %q must be %s.", te.Field, kind))
			}
		}
		// The checks above leave no known way here; a field type this
		// decoder does not describe would.
		return badRequest("The request body does not have the expected shape.")
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
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			fields[name] = "an integer"
		case reflect.Float32, reflect.Float64:
			fields[name] = "a number"
		case reflect.Bool:
			fields[name] = "true or false"
		case reflect.Slice, reflect.Array:
			fields[name] = "a list"
		default:
			fields[name] = "an object"
		}
	}
	return fields
}

// fieldList names the fields for a description, in the same order on
// every request.
func fieldList(fields map[string]string) string {
	names := make([]string, 0, len(fields))
	for _, n := range slices.Sorted(maps.Keys(fields)) {
		names = append(names, strconv.Quote(n))
	}
	return strings.Join(names, ", ")
}

// encode writes v as JSON with the given status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
