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

// TestAccessLine: one line per request in the text handler's format, with
// the logger's own attributes, the fields in order, and no source; none
// when the level is above info.
func TestAccessLine(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil)).With("server", "books")
	h := AccessLog(logger, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("12345"))
	}))
	req := httptest.NewRequest("GET", "/books?token=secret", nil)
	req.RemoteAddr = "192.0.2.7:4000"
	req.Header.Set("X-Request-Id", "trace-1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	line := logs.String()
	want := regexp.MustCompile(`^time=\S+ level=INFO msg=request server=books method=GET path=/books status=418 duration=\S+ bytes=5 ip=192.0.2.7 request_id=trace-1\n$`)
	if !want.MatchString(line) {
		t.Errorf("access line %q, want it to match %s", line, want)
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}

	logs.Reset()
	quiet := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	AccessLog(quiet, nil, http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if logs.Len() != 0 {
		t.Errorf("at level warn the access log wrote %q", logs.String())
	}
}
