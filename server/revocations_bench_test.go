package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

var discard = slog.New(slog.DiscardHandler)

// seedRevocations stores n revoked sessions (of n/10 users) and bumps the
// generation of n/10 users, all within the feed's window: a feed of n
// sessions and n/10 users, read from SQLite as in production.
func seedRevocations(b *testing.B, n int) *latchkeytest.Env {
	b.Helper()
	e := latchkeytest.New(b, latchkeytest.Options{RealTime: true, Config: func(c *latchkey.Config) { c.Issuer = "http://auth.test" }})
	ctx := context.Background()
	now := time.Now().UTC()
	users := make([]string, n/10)
	for i := range users {
		u := &latchkey.User{ID: fmt.Sprintf("0198f3a2-0000-7000-8000-%012x", i), Username: fmt.Sprintf("user%05d", i),
			Role: latchkey.RoleMember, PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", CreatedAt: now}
		if err := e.Store.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
		if _, err := e.Store.BumpGeneration(ctx, u.ID, now); err != nil {
			b.Fatal(err)
		}
		users[i] = u.ID
	}
	for i := range n {
		hash := make([]byte, 32)
		rand.Read(hash)
		// Random like a real UUIDv7's tail, so the size (and what gzip
		// would make of it) is a real feed's.
		id := make([]byte, 16)
		rand.Read(id)
		id[6], id[8] = id[6]&0x0f|0x70, id[8]&0x3f|0x80
		s := &latchkey.Session{ID: fmt.Sprintf("%x-%x-%x-%x-%x", id[:4], id[4:6], id[6:8], id[8:10], id[10:]), UserID: users[i%len(users)],
			CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour), CurrentHash: hash}
		if err := e.Store.CreateSession(ctx, s); err != nil {
			b.Fatal(err)
		}
		if err := e.Store.RevokeSession(ctx, s.ID, now, "logout"); err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkRevocationFeed is GET /.well-known/revocations with 10,000
// revoked sessions and 1,000 user entries, in one run:
//
//   - 200: a verifier without the ETag (a first fetch, or one after a
//     change), served from the replica's copy, which is rebuilt from the
//     database at most once a second, as in production;
//   - 304: the usual poll, If-None-Match with the current ETag;
//   - rebuild: what building the copy costs (the SQLite read and the
//     encoding), paid at most once a second per replica;
//   - bare-200: the ceiling, a net/http handler writing the same bytes from
//     memory.
//
// It reports the body's size as bytes/response.
func BenchmarkRevocationFeed(b *testing.B) {
	e := seedRevocations(b, 10000)
	f := &feed{svc: e.Service, now: time.Now}
	h := handle(discard, handleRevocations(f))
	req := httptest.NewRequest("GET", "/.well-known/revocations", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("feed: %d %s", w.Code, w.Body)
	}
	body, etag := w.Body.Bytes(), w.Header().Get("ETag")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	// Not served compressed today; the figure says what gzip would save.
	b.Logf("feed of 10,000 sessions and 1,000 users: %d bytes (%d gzipped), ETag %s", len(body), gz.Len(), etag)

	serve := func(b *testing.B, h http.Handler, inm string, want int) {
		req := httptest.NewRequest("GET", "/.well-known/revocations", nil)
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		var n int
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != want {
				b.Fatalf("status %d, want %d", w.Code, want)
			}
			n = w.Body.Len()
		}
		b.ReportMetric(float64(n), "bytes/response")
	}
	b.Run("200", func(b *testing.B) { serve(b, h, "", 200) })
	b.Run("304", func(b *testing.B) { serve(b, h, etag, 304) })
	b.Run("304-http", func(b *testing.B) {
		// Over loopback with keep-alive: the connection, HTTP parsing and
		// the client are counted too, so this bounds a real poll's cost
		// from above.
		srv := httptest.NewServer(h)
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/.well-known/revocations", nil)
		req.Header.Set("If-None-Match", etag)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := srv.Client().Do(req)
			if err != nil || resp.StatusCode != 304 {
				b.Fatalf("%v %v", resp, err)
			}
			resp.Body.Close()
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		// A clock that moves a second per read makes every request rebuild.
		var tick atomic.Int64
		start := time.Now()
		rf := &feed{svc: e.Service, now: func() time.Time { return start.Add(time.Duration(tick.Add(1)) * feedRefresh) }}
		serve(b, handle(discard, handleRevocations(rf)), "", 200)
	})
	b.Run("bare-200", func(b *testing.B) {
		serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", etag)
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}), "", 200)
	})
}
