package decodetest

import (
	"bytes"
	"strings"
	"testing"
)

// TestTableIsWellFormed loads the embedded table; a malformed one would
// otherwise fail only as a confusing error inside each service's test.
func TestTableIsWellFormed(t *testing.T) {
	cases := Cases(t)
	refused, accepted := 0, 0
	for _, c := range cases {
		if c.Status == 0 {
			accepted++
		} else {
			refused++
		}
	}
	if refused == 0 || accepted == 0 {
		t.Errorf("%d refused and %d accepted cases; the table needs both", refused, accepted)
	}
}

func TestParse(t *testing.T) {
	doc := func(cases ...string) []byte {
		return []byte(`{"about":[],"cases":[` + strings.Join(cases, ",") + `]}`)
	}
	const accepted = `"contentType":"","decoded":{}`
	tests := []struct {
		name    string
		doc     []byte
		wantErr string // part of the error; "" for none
		body    []byte // the first case's body, when there is no error
	}{
		{name: "plain body", doc: doc(`{"name":"a","body":"{}",` + accepted + `}`), body: []byte("{}")},
		{name: "raw bytes", doc: doc(`{"name":"a","rawBody":"\\xff{\\x5c",` + accepted + `}`), body: []byte("\xff{\\")},
		{name: "padding with spaces", doc: doc(`{"name":"a","body":"{}<pad>","padTo":5,` + accepted + `}`), body: []byte("{}   ")},
		{name: "padding inside", doc: doc(`{"name":"a","body":"[<pad>]","padTo":4,"padWith":"1",` + accepted + `}`), body: []byte("[11]")},
		{name: "misspelt key", doc: doc(`{"name":"a","body":"{}","contentTyp":"",` + accepted + `}`), wantErr: "unknown field"},
		{name: "no content type", doc: doc(`{"name":"a","body":"{}","decoded":{}}`), wantErr: "contentType"},
		{name: "no body", doc: doc(`{"name":"a",` + accepted + `}`), wantErr: "rawBody"},
		{name: "two bodies", doc: doc(`{"name":"a","body":"","rawBody":"",` + accepted + `}`), wantErr: "rawBody"},
		{name: "no name", doc: doc(`{"body":"{}",` + accepted + `}`), wantErr: "no name"},
		{name: "name twice", doc: doc(`{"name":"a","body":"{}",`+accepted+`}`, `{"name":"a","body":"[]",`+accepted+`}`), wantErr: "twice"},
		{name: "accepted without decoded", doc: doc(`{"name":"a","body":"{}","contentType":""}`), wantErr: "accepted"},
		{name: "refused without description", doc: doc(`{"name":"a","body":"{}","contentType":"","status":400,"code":"invalid_request"}`), wantErr: "refused"},
		{name: "refused with a 2xx", doc: doc(`{"name":"a","body":"{}","contentType":"","status":200,"code":"x","description":"y"}`), wantErr: "refused"},
		{name: "bad escape", doc: doc(`{"name":"a","rawBody":"\\q1",` + accepted + `}`), wantErr: `\xNN`},
		{name: "short escape", doc: doc(`{"name":"a","rawBody":"\\xf",` + accepted + `}`), wantErr: `\xNN`},
		{name: "padTo without marker", doc: doc(`{"name":"a","body":"{}","padTo":9,` + accepted + `}`), wantErr: "<pad>"},
		{name: "padTo too small", doc: doc(`{"name":"a","body":"{}<pad>","padTo":1,` + accepted + `}`), wantErr: "padTo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cases, err := parse(tc.doc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(cases[0].Body, tc.body) {
				t.Errorf("body %q, want %q", cases[0].Body, tc.body)
			}
		})
	}
}
