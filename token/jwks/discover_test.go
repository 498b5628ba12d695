package jwks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestDiscover(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		doc     string
		wantErr bool
	}{
		{"ok", 200, `{"issuer":"https://auth.test","jwks_uri":"https://auth.test/.well-known/jwks.json","token_endpoint":"x"}`, false},
		{"no issuer", 200, `{"jwks_uri":"https://auth.test/jwks"}`, true},
		{"relative jwks_uri", 200, `{"issuer":"x","jwks_uri":"/jwks"}`, true},
		{"file jwks_uri", 200, `{"issuer":"x","jwks_uri":"file:///etc/passwd"}`, true},
		{"not JSON", 200, `nope`, true},
		{"not found", 404, `{}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var path string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				path = r.URL.Path
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.doc))
			}))
			defer srv.Close()
			iss, jwks, err := Discover(context.Background(), nil, srv.URL+"/")
			if path != "/.well-known/openid-configuration" {
				t.Fatalf("fetched %q", path)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (iss != "https://auth.test" || jwks != "https://auth.test/.well-known/jwks.json") {
				t.Fatalf("got %q %q", iss, jwks)
			}
		})
	}
}
