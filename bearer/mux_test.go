package bearer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey-dev/latchkey/bearer"
)

func TestMuxErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.NotFound(w, r) // the handler's own 404, which must stay as it is
			return
		}
		w.Write([]byte("item " + r.PathValue("id")))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /docs/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("docs")) })
	h := bearer.MuxErrors(mux)

	tests := []struct {
		name     string
		method   string
		target   string
		status   int
		code     string // contract error code; "" when the answer is not the contract's error
		body     string // exact body when code is ""
		allow    string
		location string
	}{
		{name: "unknown path", method: "GET", target: "/nope", status: 404, code: "not_found"},
		{name: "unknown path, HEAD", method: "HEAD", target: "/nope", status: 404, code: "not_found"},
		{name: "root without a pattern", method: "GET", target: "/", status: 404, code: "not_found"},
		{name: "method the collection does not take", method: "DELETE", target: "/items", status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "method the item does not take", method: "PUT", target: "/items/1", status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{name: "matched route with its path value", method: "GET", target: "/items/7", status: 200, body: "item 7"},
		{name: "a handler's own 404 is left alone", method: "GET", target: "/items/missing", status: 404, body: "404 page not found\n"},
		{name: "subtree", method: "GET", target: "/docs/a/b", status: 200, body: "docs"},
		{name: "subtree without its slash is redirected", method: "GET", target: "/docs", status: 307, location: "/docs/"},
		{name: "unclean path to a route is redirected", method: "GET", target: "/x/../items/7", status: 307, location: "/items/7"},
		{name: "unclean path to nothing is redirected as net/http does", method: "GET", target: "/x/../nope", status: 307, location: "/nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
			if got := rec.Header().Get("Location"); got != tc.location {
				t.Errorf("Location = %q, want %q", got, tc.location)
			}
			if tc.code == "" {
				if tc.location == "" && rec.Body.String() != tc.body {
					t.Errorf("body %q, want %q", rec.Body, tc.body)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error != tc.code || body.Description == "" {
				t.Errorf("body %q (%v), want error %q with a description", rec.Body, err, tc.code)
			}
		})
	}
}
