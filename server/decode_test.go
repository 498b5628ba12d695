package server

import (
	"errors"
	"net/http"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/decodetest"
)

// TestDecodeBodies runs the table of bodies shared with the books server's
// decoder, so that the two cannot answer one body differently.
func TestDecodeBodies(t *testing.T) {
	decodetest.Run(t, decode, func(err error) decodetest.Answer {
		e, ok := errors.AsType[*Error](err)
		if !ok {
			return decodetest.Answer{Status: http.StatusInternalServerError, Description: err.Error()}
		}
		return decodetest.Answer{Status: e.Status, Code: e.Code, Description: e.Description}
	})
}

// maxFuzzSeed leaves the table's 1 MiB bodies out of the fuzz seeds: the
// table tests them, and mutating them would only slow the fuzzer down.
const maxFuzzSeed = 4 << 10

// FuzzDecode feeds arbitrary bodies to the one decoder every endpoint
// uses: it must never panic, and every failure must be a 4xx *Error.
// Seeds: the shared table, and bodies shaped for the auth server's own
// request types, whose field names the table does not use.
func FuzzDecode(f *testing.F) {
	for _, c := range decodetest.Cases(f) {
		if len(c.Body) <= maxFuzzSeed {
			f.Add(c.Body)
		}
	}
	for _, seed := range []string{
		`{"username":"anna","password":"password123"}`,
		`{"refreshToken":"abc","token":"abc"}`,
		`{"username":null}`,
		`{"username":1}`,
		`{"USERNAME":"x"}`,
		`{"username":"\u0000"}`,
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
