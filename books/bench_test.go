package books

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
)

// BenchmarkListBooks is GET /books through the whole handler: the bearer
// middleware with token.Verifier's cache of verified tokens (a client
// sends the same token until it expires), the store and JSON encoding.
func BenchmarkListBooks(b *testing.B) {
	env := newTestEnv(b)
	benchmarkList(b, env.handler, env.member)
}

// BenchmarkListBooksUncachedVerify checks the ES256 signature on every
// request, as for the first request with each token.
func BenchmarkListBooksUncachedVerify(b *testing.B) {
	env := newTestEnv(b)
	h, err := New(Config{
		Store: env.store,
		Verifier: token.NewVerifier(token.StaticKeys(env.signer.VerificationKey()),
			token.WithIssuer(testIssuer), token.WithAudience(testAudience), token.WithCacheSize(0)),
	})
	if err != nil {
		b.Fatal(err)
	}
	benchmarkList(b, h, env.member)
}

// BenchmarkListBooksNoAuth is the same mux and handler without the bearer
// middleware, so the difference from BenchmarkListBooks is the token check.
func BenchmarkListBooksNoAuth(b *testing.B) {
	env := newTestEnv(b)
	mux := http.NewServeMux()
	mux.Handle("GET /books", handle(slog.New(slog.DiscardHandler), handleListBooks(env.store)))
	benchmarkList(b, bearer.MuxErrors(mux), "")
}

func benchmarkList(b *testing.B, h http.Handler, token string) {
	req := httptest.NewRequest("GET", "/books", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkListBooksBare is the ceiling of any GET /books: a bare net/http
// handler writing the same JSON bytes from memory, no token, no store.
// BenchmarkListBooks / BenchmarkListBooksBare, in one run, is how close
// the real path comes to it.
func BenchmarkListBooksBare(b *testing.B) {
	env := newTestEnv(b)
	rec := httptest.NewRecorder()
	env.handler.ServeHTTP(rec, func() *http.Request {
		r := httptest.NewRequest("GET", "/books", nil)
		r.Header.Set("Authorization", "Bearer "+env.member)
		return r
	}())
	body := rec.Body.Bytes()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	benchmarkList(b, bare, "")
}
