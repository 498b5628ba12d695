package books

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
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

// BenchmarkListBooksOverBare runs GET /books through the whole handler
// and the bare handler alternately in one loop, so that both halves see
// the same machine (a shared VM drifts), and reports bare-time/real-time
// as "ratio": the real path's throughput as a fraction of the ceiling's,
// in process. Sub-benchmarks: the in-memory SQLite store of the other
// benchmarks; a SQLite file, as the books server runs (WAL: each read
// takes the file's shared locks, a few system calls); and PostgreSQL when
// LATCHKEY_TEST_POSTGRES_URL is set.
//
//	go test -run '^$' -bench ListBooksOverBare -count 5 ./books
func BenchmarkListBooksOverBare(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		env := newTestEnv(b)
		benchmarkOverBare(b, env.handler, env.member)
	})
	b.Run("sqlite-file", func(b *testing.B) {
		store, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "books.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		if err := store.SeedDemo(context.Background()); err != nil {
			b.Fatal(err)
		}
		env := newTestEnv(b, func(c *Config) { c.Store = store })
		benchmarkOverBare(b, env.handler, env.member)
	})
	b.Run("postgres", func(b *testing.B) {
		store := openBenchPostgres(b)
		env := newTestEnv(b, func(c *Config) { c.Store = store })
		benchmarkOverBare(b, env.handler, env.member)
	})
}

func benchmarkOverBare(b *testing.B, h http.Handler, token string) {
	req := httptest.NewRequest("GET", "/books", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	bareReq := httptest.NewRequest("GET", "/books", nil)
	const batch = 16
	var bareTime, realTime time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		for range batch {
			bare.ServeHTTP(httptest.NewRecorder(), bareReq)
		}
		t1 := time.Now()
		for range batch {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
		realTime += time.Since(t1)
		bareTime += t1.Sub(t0)
	}
	n := float64(b.N * batch)
	b.ReportMetric(float64(bareTime.Nanoseconds())/n, "bare-ns/req")
	b.ReportMetric(float64(realTime.Nanoseconds())/n, "real-ns/req")
	b.ReportMetric(float64(bareTime)/float64(realTime), "ratio")
}

// openBenchPostgres opens a seeded PostgresStore in a schema of its own,
// or skips without LATCHKEY_TEST_POSTGRES_URL.
func openBenchPostgres(b *testing.B) *PostgresStore {
	b.Helper()
	s, err := OpenPostgres(context.Background(), PostgresConfig{URL: pgdbtest.URL(b), Schema: pgdbtest.Schema(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.SeedDemo(context.Background()); err != nil {
		b.Fatal(err)
	}
	return s
}
