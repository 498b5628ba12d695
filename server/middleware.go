package server

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/latchkey-dev/latchkey/bearer"
)

// statusRecorder remembers what a handler answered, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// AccessLog logs one line per request: method, path, status, duration,
// the client address (see Config.TrustedProxies) and a request id, which it
// also returns in X-Request-Id. It never logs the query string, headers or
// bodies, where tokens and passwords travel. A panic in h becomes a 500
// with the contract's body instead of a dropped connection. cmd/latchkey
// wraps the books server with it too.
//
// It also caps the request body at MaxBodyBytes, here rather than only in
// decode, because net/http answers an oversized body gracefully (the 413
// with Connection: close, then a short drain before closing, so a proxy in
// front reads the answer instead of a reset) only when MaxBytesReader is
// given the connection's own ResponseWriter, which the log's recorder hides.
func AccessLog(logger *slog.Logger, trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r.Header.Get("X-Request-Id"))
		h := w.Header()
		// Canonical keys set directly: Set would canonicalize them again
		// on every request. nosniff is one shared slice; net/http copies
		// header values when it writes them, and nothing here changes a
		// value in place.
		h["X-Request-Id"] = []string{id}
		h["X-Content-Type-Options"] = nosniff
		if r.Body != http.NoBody { // net/http's own empty body: nothing to cap
			r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		}
		addr := clientAddr(r, trusted)
		r = r.WithContext(withClientAddr(r.Context(), addr))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				logger.ErrorContext(r.Context(), "panic serving request", "request_id", id, "panic", p)
				if rec.status == 0 {
					bearer.WriteError(rec, http.StatusInternalServerError, "server_error", "The server could not complete the request.")
				}
			}
			logRequest(r.Context(), logger, r, rec, time.Since(start), addr, id)
		}()
		next.ServeHTTP(rec, r)
	})
}

// nosniff is the X-Content-Type-Options value of every answer.
var nosniff = []string{"nosniff"}

// logRequest writes the access line. It hands the record to the handler
// itself, with no caller's PC: Logger.LogAttrs would walk the stack for
// one on every request (runtime.Callers, a tenth of the line's cost), and
// the line's source is always this function. Typed attributes: no value
// is boxed in an interface.
func logRequest(ctx context.Context, logger *slog.Logger, r *http.Request, rec *statusRecorder, d time.Duration, addr, id string) {
	h := logger.Handler()
	if !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	line := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	line.AddAttrs(
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", rec.status),
		slog.Duration("duration", d),
		slog.Int("bytes", rec.bytes),
		slog.String("ip", addr),
		slog.String("request_id", id))
	h.Handle(ctx, line)
}

// requestID keeps a caller's id if it is short and plain, so a trace can
// cross services; anything else is replaced, so the log cannot be forged.
func requestID(in string) string {
	if len(in) > 0 && len(in) <= 64 {
		ok := true
		for i := 0; i < len(in) && ok; i++ {
			c := in[i]
			ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
		}
		if ok {
			return in
		}
	}
	return rand.Text()[:20]
}
