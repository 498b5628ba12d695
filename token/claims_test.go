package token

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzAudience checks the shortcut for plain "aud" strings against
// encoding/json: whatever the input, the same audience or an error.
func FuzzAudience(f *testing.F) {
	for _, seed := range []string{
		`"latchkey"`, `""`, `"a\"b"`, `"\u00e9"`, `"é"`, "\"\xff\"", "\"tab\there\"",
		`"a\\b"`, `["x","y"]`, `null`, `7`, `"unterminated`, `"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return // encoding/json never hands an UnmarshalJSON invalid JSON
		}
		var got audience
		gotErr := got.UnmarshalJSON(b)
		// The reference: a JSON string is one audience, anything else a list.
		var want audience
		var wantErr error
		if b[0] == '"' {
			var s string
			wantErr = json.Unmarshal(b, &s)
			want = audience{s}
		} else {
			var list []string
			wantErr = json.Unmarshal(b, &list)
			want = list
		}
		if (gotErr == nil) != (wantErr == nil) || gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("aud %q: got %q, %v; encoding/json gives %q, %v", b, got, gotErr, want, wantErr)
		}
	})
}
