package bearer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey/token"
)

// acceptOne accepts exactly one token string, so the fuzzer can check that
// only that exact string, properly presented, gets through.
type acceptOne string

func (a acceptOne) Verify(_ context.Context, raw string) (*token.Claims, error) {
	if raw == string(a) {
		return &token.Claims{Subject: "u", Role: "admin"}, nil
	}
	return nil, token.ErrSignature
}

const fuzzToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"

// FuzzAuthorization sends arbitrary Authorization headers through Require.
// Seeds are in testdata/fuzz/FuzzAuthorization as well as below.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{
		"Bearer " + fuzzToken, "bearer " + fuzzToken, "BEARER  " + fuzzToken, "Bearer", "Bearer ",
		"Basic dXNlcjpwYXNz", "Bearer a b", "Bearer a=b", "Bearer ==", "Bearer abc==", "Bearer\t" + fuzzToken,
		"Bearer " + fuzzToken + "\x00", "Bearer é", "", " ", "Bearer " + strings.Repeat("A", 10000),
	} {
		f.Add(s, "")
		f.Add(s, "Bearer "+fuzzToken)
	}
	h := Require(acceptOne(fuzzToken))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := ClaimsFrom(r.Context()); !ok {
			panic("handler reached without claims")
		}
	}))
	f.Fuzz(func(t *testing.T, first, second string) {
		values := []string{first}
		if second != "" {
			values = append(values, second)
		}
		if lax, err := parseAuthorization(values, false); err == nil && strings.Contains(lax, " ") {
			t.Fatalf("lax parse(%q) = %q", values, lax)
		}
		raw, err := parseAuthorization(values, true)
		if err == nil {
			if len(values) != 1 || !isToken68(raw) || !strings.HasSuffix(first, raw) ||
				!strings.EqualFold(first[:6], "Bearer") || strings.TrimLeft(first[6:], " ") != raw {
				t.Fatalf("parse(%q) = %q", values, raw)
			}
		}

		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Authorization"] = values
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if err != nil || raw != fuzzToken {
				t.Fatalf("%q let through", values)
			}
		case http.StatusBadRequest, http.StatusUnauthorized:
			if err == nil && raw == fuzzToken {
				t.Fatalf("%q refused", values)
			}
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), `Bearer realm="latchkey"`) {
				t.Fatalf("no challenge for %q", values)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, values)
		}
	})
}
