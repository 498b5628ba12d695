// Package decodetest is the one table of request bodies, hostile and
// acceptable, that both JSON decoders of Latchkey answer alike: the auth
// server's (server/decode.go) and the books server's own copy
// (books/decode.go), which books keeps so that it can be copied out of this
// module. The twins share these tests, not code, so that neither can drift
// from the contract's common rules unseen.
//
// The table is testdata/bodies.json, embedded; its "about" lines describe
// the format. [Run] drives a decoder through every case; [Cases] gives the
// cases to tests that send them through real endpoints and to fuzz targets
// as seeds.
package decodetest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

//go:embed testdata/bodies.json
var table []byte

// Target is what every case decodes into: one field of each kind the
// services' bodies have. No endpoint has these names, so a body that fails
// here on a field fails at any endpoint too, as an unknown field.
type Target struct {
	Text  *string `json:"text,omitempty"`
	Count *int    `json:"count,omitempty"`
	Flag  *bool   `json:"flag,omitempty"`
}

// Case is one body and the answer it must get.
type Case struct {
	Name        string
	Body        []byte
	ContentType string // "" sends no Content-Type header
	// Status is 0 when the decoder must accept the body and fill a Target
	// as Decoded says; otherwise the error answer is Status, Code and
	// Description.
	Status      int
	Code        string
	Description string
	Decoded     json.RawMessage
}

// Request returns a request carrying c's body and Content-Type.
func (c Case) Request(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, bytes.NewReader(c.Body))
	if c.ContentType != "" {
		r.Header.Set("Content-Type", c.ContentType)
	}
	return r
}

// Answer is what a service makes of a decoding error: the response's
// status, contract code and description.
type Answer struct {
	Status      int
	Code        string
	Description string
}

// Decoder is the shape both services' decode functions have: read r's body
// into v, a pointer to a struct, or return an error for the client.
type Decoder func(w http.ResponseWriter, r *http.Request, v any) error

// Run drives decode through every case of the table, and through a body
// that fails while it is read, checking each error's Answer (as answer maps
// it) exactly and each accepted body's decoded fields.
func Run(t *testing.T, decode Decoder, answer func(error) Answer) {
	for _, c := range Cases(t) {
		t.Run(c.Name, func(t *testing.T) {
			w := httptest.NewRecorder()
			var got Target
			err := decode(w, c.Request(http.MethodPost, "/"), &got)
			if w.Body.Len() != 0 || len(w.Header()) != 0 {
				t.Errorf("decode wrote to the response (%v, %q); only the caller answers", w.Header(), w.Body)
			}
			if c.Status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				mustEqualJSON(t, got, c.Decoded)
				return
			}
			if err == nil {
				t.Fatalf("accepted as %+v, want %d %s", got, c.Status, c.Code)
			}
			want := Answer{Status: c.Status, Code: c.Code, Description: c.Description}
			if a := answer(err); a != want {
				t.Errorf("answer\n %+v\nwant\n %+v", a, want)
			}
		})
	}
	t.Run("body that fails while it is read", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader(`{"text":`), failingReader{}))
		r.Header.Set("Content-Type", "application/json")
		err := decode(httptest.NewRecorder(), r, &Target{})
		want := Answer{Status: http.StatusBadRequest, Code: "invalid_request", Description: "The request body could not be read."}
		if err == nil {
			t.Fatal("accepted")
		}
		if a := answer(err); a != want {
			t.Errorf("answer %+v, want %+v", a, want)
		}
	})
}

// failingReader stands for a client that goes away mid-body.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// mustEqualJSON compares got, marshalled, with want, numbers exactly.
func mustEqualJSON(tb testing.TB, got Target, want json.RawMessage) {
	tb.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		tb.Fatal(err)
	}
	g, w := exactJSON(tb, b), exactJSON(tb, want)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("decoded %s, want %s", b, want)
	}
}

func exactJSON(tb testing.TB, b []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("%s: %v", b, err)
	}
	return v
}

// fileCase is a case as testdata/bodies.json writes it.
type fileCase struct {
	Name        string          `json:"name"`
	Body        *string         `json:"body"`
	RawBody     *string         `json:"rawBody"`
	PadTo       int             `json:"padTo"`
	PadWith     string          `json:"padWith"`
	ContentType *string         `json:"contentType"`
	Status      int             `json:"status"`
	Code        string          `json:"code"`
	Description string          `json:"description"`
	Decoded     json.RawMessage `json:"decoded"`
}

// Cases returns the table's cases, failing tb if the table is malformed,
// so that a mistake in it cannot pass as a test.
func Cases(tb testing.TB) []Case {
	tb.Helper()
	cases, err := parse(table)
	if err != nil {
		tb.Fatalf("decodetest: testdata/bodies.json: %v", err)
	}
	return cases
}

func parse(data []byte) ([]Case, error) {
	var doc struct {
		About []string   `json:"about"`
		Cases []fileCase `json:"cases"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt key must not silently drop a check
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	cases := make([]Case, 0, len(doc.Cases))
	for i, fc := range doc.Cases {
		c, err := fc.build()
		if err != nil {
			return nil, fmt.Errorf("case %d %q: %w", i, fc.Name, err)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("case %d: name %q used twice", i, c.Name)
		}
		seen[c.Name] = true
		cases = append(cases, c)
	}
	return cases, nil
}

func (fc fileCase) build() (Case, error) {
	c := Case{Name: fc.Name, Status: fc.Status, Code: fc.Code, Description: fc.Description, Decoded: fc.Decoded}
	switch {
	case fc.Name == "":
		return Case{}, errors.New("no name")
	case fc.ContentType == nil:
		return Case{}, errors.New(`no contentType (write "" for none)`)
	case (fc.Body == nil) == (fc.RawBody == nil):
		return Case{}, errors.New("exactly one of body and rawBody is needed")
	case fc.Status == 0 && (fc.Decoded == nil || fc.Code != "" || fc.Description != ""):
		return Case{}, errors.New("an accepted case has decoded and no code or description")
	case fc.Status != 0 && (fc.Decoded != nil || fc.Code == "" || fc.Description == "" || fc.Status < 400 || fc.Status > 499):
		return Case{}, errors.New("a refused case has a 4xx status, a code and a description, and no decoded")
	}
	c.ContentType = *fc.ContentType
	body := []byte(nil)
	if fc.Body != nil {
		body = []byte(*fc.Body)
	} else {
		var err error
		if body, err = unescapeBytes(*fc.RawBody); err != nil {
			return Case{}, err
		}
	}
	if fc.PadTo > 0 {
		pad := fc.PadWith
		if pad == "" {
			pad = " "
		}
		before, after, ok := bytes.Cut(body, []byte("<pad>"))
		n := fc.PadTo - len(before) - len(after)
		switch {
		case !ok || bytes.Contains(after, []byte("<pad>")):
			return Case{}, errors.New("padTo needs exactly one <pad> in the body")
		case len(pad) != 1 || n < 0:
			return Case{}, errors.New("padWith must be one byte, and padTo at least the rest of the body")
		}
		body = bytes.Join([][]byte{before, bytes.Repeat([]byte(pad), n), after}, nil)
	}
	c.Body = body
	return c, nil
}

// unescapeBytes turns each \xNN of s into the byte NN, for bodies that are
// not UTF-8 and so cannot be JSON strings.
func unescapeBytes(s string) ([]byte, error) {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		if i+4 > len(s) || s[i+1] != 'x' {
			return nil, fmt.Errorf("rawBody: a backslash at %d is not \\xNN", i)
		}
		n, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("rawBody: %q at %d is not \\xNN", s[i:i+4], i)
		}
		b = append(b, byte(n))
		i += 3
	}
	return b, nil
}
