package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// MaxBodyBytes is the largest request body either service reads.
const MaxBodyBytes = 1 << 20

// decode reads one JSON object into v, enforcing the contract's common
// rules: application/json (or no Content-Type), at most MaxBodyBytes, a
// single value with nothing after it, no unknown fields, no wrong types and
// no nulls. Every failure is an *Error with a 4xx status. The books server
// has its own decoder with the same rules (books is written as a service
// outside this module would be, so it cannot import this one); both test
// the same contract rows.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// Parameters are allowed, but JSON is UTF-8 (RFC 8259): a body
		// declared in another charset would be read as something else.
		mt, params, err := mime.ParseMediaType(ct)
		cs, hasCharset := params["charset"]
		if err != nil || mt != "application/json" || hasCharset && !strings.EqualFold(cs, "utf-8") {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
				Description: "The body must be JSON in UTF-8, sent with Content-Type: application/json."}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
				Description: fmt.Sprintf("The body is larger than %d bytes.", MaxBodyBytes)}
		}
		return badRequest("The body could not be read.")
	}
	return decodeBytes(body, v)
}

// decodeBytes is decode without the HTTP parts; the fuzz target drives it.
func decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("The body is empty; a JSON object is required.")
	}
	// A first pass into raw fields finds what encoding/json would silently
	// accept: a top-level null or non-object, and null field values.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		if err != nil && !json.Valid(body) {
			return badRequest("The body is not valid JSON.")
		}
		return badRequest("The body must be a JSON object.")
	}
	known := fieldNames(v)
	for name, val := range raw {
		// encoding/json matches names without regard to case; the contract's
		// names are exact, so anything else is an unknown field.
		if !known[name] {
			return badRequest(fmt.Sprintf("Unknown field %q.", name))
		}
		if string(bytes.TrimSpace(val)) == "null" {
			return badRequest(fmt.Sprintf("Field %q must not be null.", name))
		}
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return badRequest(fmt.Sprintf("Field %q must be a %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String())))
		default:
			return badRequest("The body is not valid JSON.")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("The body has data after the JSON object.")
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "number"
	case "bool":
		return "boolean"
	default:
		return goKind
	}
}

// fieldNames returns the JSON names of the fields of the struct v points to.
func fieldNames(v any) map[string]bool {
	t := reflect.TypeOf(v).Elem()
	names := make(map[string]bool, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		if name != "-" && f.IsExported() {
			names[name] = true
		}
	}
	return names
}

// encode writes v as JSON with the given status.
func encode(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
