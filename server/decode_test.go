package server

import (
	"errors"
	"net/http"
	"testing"
)

// FuzzDecode feeds arbitrary bodies to the one decoder every endpoint
// uses: it must never panic, and every failure must be a 4xx *Error.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"username":"anna","password":"password123"}`,
		`{"refreshToken":"abc","token":"abc"}`,
		`{"username":null}`,
		`{"username":1}`,
		`{"USERNAME":"x"}`,
		`{} {}`,
		`[]`,
		`null`,
		`"\ud800"`,
		`{"username":"\u0000"}`,
		`{"a":{"b":[1,2,{"c":null}]}}`,
		"\xff\xfe{",
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var c credentials
		err := decodeBytes(body, &c)
		if err == nil {
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status < 400 || e.Status >= 500 || e.Code == "" || e.Description == "" {
			t.Fatalf("decode(%q) = %v, want a described 4xx", body, err)
		}
		var r refreshBody
		if err := decodeBytes(body, &r); err != nil && !errors.As(err, &e) {
			t.Fatalf("decode(%q) into refreshBody = %v", body, err)
		}
	})
}

func TestDecodeAcceptsValid(t *testing.T) {
	var c credentials
	if err := decodeBytes([]byte(` {"username":"anna","password":"pässwörd"} `), &c); err != nil {
		t.Fatal(err)
	}
	if c.Username != "anna" || c.Password != "pässwörd" {
		t.Errorf("decoded %+v", c)
	}
	if err := decodeBytes([]byte(`{"username":"anna","password":"x"}x`), &c); err == nil {
		t.Error("trailing text accepted")
	} else if e := errorFor(err); e.Status != http.StatusBadRequest {
		t.Errorf("trailing text: %d", e.Status)
	}
}
