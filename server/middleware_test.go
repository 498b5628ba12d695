package server

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestRequestID: a caller's plain id crosses into the log and the answer;
// anything that could forge a log line is replaced by a fresh id, and
// fresh ids do not repeat.
func TestRequestID(t *testing.T) {
	var logs bytes.Buffer
	h := AccessLog(slog.New(slog.NewJSONHandler(&logs, nil)), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	fresh := regexp.MustCompile(`^[A-Z2-7]{20}$`)
	seen := map[string]bool{}
	for _, tc := range []struct{ name, in string }{
		{"plain", "trace-42.a_b"},
		{"none", ""},
		{"a newline", "x\ny"},
		{"a quote", `x"y`},
		{"too long", strings.Repeat("a", 65)},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		if tc.in != "" {
			req.Header.Set("X-Request-Id", tc.in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-Id")
		switch {
		case tc.name == "plain" && id != tc.in:
			t.Errorf("%s: X-Request-Id = %q, want the caller's %q", tc.name, id, tc.in)
		case tc.name != "plain" && (!fresh.MatchString(id) || seen[id]):
			t.Errorf("%s: X-Request-Id = %q, want a fresh 20-character id", tc.name, id)
		}
		seen[id] = true
		if !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
			t.Errorf("%s: the access log has no line with request_id %q", tc.name, id)
		}
	}
	for range 1000 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		id := rec.Header().Get("X-Request-Id")
		if seen[id] {
			t.Fatalf("id %q given twice", id)
		}
		seen[id] = true
	}
}
