package jwks

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// jwksServer serves whatever document it holds and counts requests.
type jwksServer struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	status int
	doc    string
}

func newJWKSServer(tb testing.TB, doc string) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK, doc: doc}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, doc := s.status, s.doc
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(doc))
	}))
	tb.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, doc string) {
	s.mu.Lock()
	s.status, s.doc = status, doc
	s.mu.Unlock()
}

func newTestRemote(tb testing.TB, url string, clk *clock) *Remote {
	tb.Helper()
	r, err := NewRemote(Config{URL: url, Now: clk.Now, MinRefetch: 30 * time.Second, MaxAge: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestRemoteCaches(t *testing.T) {
	ec, ed := mustJWK(t, token.ES256), mustJWK(t, token.EdDSA)
	srv := newJWKSServer(t, jwksOf(t, ec, ed))
	r := newTestRemote(t, srv.URL, newClock(fixedNow))
	ctx := context.Background()
	for range 10 {
		for _, kid := range []string{ec.Kid, ed.Kid} {
			if _, err := r.Key(ctx, kid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestRemoteUnknownKidRefetchIsRateLimited(t *testing.T) {
	ec := mustJWK(t, token.ES256)
	srv := newJWKSServer(t, jwksOf(t, ec))
	clk := newClock(fixedNow)
	r := newTestRemote(t, srv.URL, clk)
	ctx := context.Background()
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := r.Key(ctx, "made-up-"+string(rune('a'+i%26))); !errors.Is(err, token.ErrUnknownKey) {
			t.Fatalf("err = %v, want token.ErrUnknownKey", err)
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches within MinRefetch, want 1", n)
	}

	// A key rotated in is found on the first unknown-kid lookup once the
	// interval has passed, and only one fetch is spent on it.
	ed := mustJWK(t, token.EdDSA)
	srv.serve(http.StatusOK, jwksOf(t, ec, ed))
	clk.Advance(30 * time.Second)
	if _, err := r.Key(ctx, ed.Kid); err != nil {
		t.Fatalf("rotated-in key: %v", err)
	}
	for range 100 {
		r.Key(ctx, "still-made-up")
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestRemoteServerDownKeepsCachedKeys(t *testing.T) {
	ec := mustJWK(t, token.ES256)
	srv := newJWKSServer(t, jwksOf(t, ec))
	clk := newClock(fixedNow)
	r := newTestRemote(t, srv.URL, clk)
	ctx := context.Background()
	if _, err := r.Key(ctx, ec.Kid); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	clk.Advance(2 * time.Hour) // past MaxAge: a refresh is due and will fail
	for range 3 {
		if _, err := r.Key(ctx, ec.Kid); err != nil {
			t.Fatalf("cached key after server went down: %v", err)
		}
		waitIdle(t, r)
		clk.Advance(time.Minute)
	}
	if _, err := r.Key(ctx, "unknown"); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("unknown kid with server down: %v", err)
	}
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("Ready with cached keys: %v", err)
	}
}

func TestRemoteRefreshesAfterMaxAge(t *testing.T) {
	ec := mustJWK(t, token.ES256)
	srv := newJWKSServer(t, jwksOf(t, ec))
	clk := newClock(fixedNow)
	r := newTestRemote(t, srv.URL, clk)
	ctx := context.Background()
	if _, err := r.Key(ctx, ec.Kid); err != nil {
		t.Fatal(err)
	}
	// The key server withdraws the key; it stays usable until the cache is
	// old enough to refresh, then goes.
	srv.serve(http.StatusOK, jwksOf(t, mustJWK(t, token.EdDSA)))
	clk.Advance(59 * time.Minute)
	if _, err := r.Key(ctx, ec.Kid); err != nil {
		t.Fatal(err)
	}
	if srv.hits.Load() != 1 {
		t.Fatal("refetched before MaxAge")
	}
	clk.Advance(time.Minute)
	if _, err := r.Key(ctx, ec.Kid); err != nil {
		t.Fatalf("stale key must still answer while the refresh runs: %v", err)
	}
	waitIdle(t, r)
	if srv.hits.Load() != 2 {
		t.Fatalf("%d fetches, want 2", srv.hits.Load())
	}
	if _, err := r.Key(ctx, ec.Kid); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("withdrawn key: err = %v", err)
	}
}

// waitIdle waits for a background fetch to finish.
func waitIdle(tb testing.TB, r *Remote) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		busy := r.inflight != nil
		r.mu.Unlock()
		if !busy {
			return
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatal("fetch still running")
}

func TestRemoteRejectsBadDocuments(t *testing.T) {
	ec := mustJWK(t, token.ES256)
	enc := ec
	enc.Use = "enc"
	tests := []struct {
		name   string
		status int
		doc    string
	}{
		{"server error", http.StatusInternalServerError, `{"keys":[]}`},
		{"not found", http.StatusNotFound, ``},
		{"HTML", http.StatusOK, `<html>hello</html>`},
		{"no keys member", http.StatusOK, `{"issuer":"x"}`},
		{"keys not an array", http.StatusOK, `{"keys":"x"}`},
		{"trailing garbage", http.StatusOK, jwksOf(t, ec) + `]`},
		{"duplicate kid", http.StatusOK, jwksOf(t, ec, ec)},
		{"only unusable keys", http.StatusOK, jwksOf(t, enc)},
		{"over 1 MiB", http.StatusOK, `{"keys":[],"pad":"` + strings.Repeat("x", maxDocumentSize) + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, "")
			srv.serve(tc.status, tc.doc)
			clk := newClock(fixedNow)
			r := newTestRemote(t, srv.URL, clk)
			ctx := context.Background()
			if err := r.Ready(ctx); !errors.Is(err, token.ErrKeysUnavailable) {
				t.Fatalf("Ready = %v, want token.ErrKeysUnavailable", err)
			}
			if _, err := r.Key(ctx, ec.Kid); !errors.Is(err, token.ErrKeysUnavailable) {
				t.Fatalf("Key = %v, want token.ErrKeysUnavailable", err)
			}

			// A bad document never replaces good cached keys.
			srv.serve(http.StatusOK, jwksOf(t, ec))
			clk.Advance(time.Second)
			if err := r.Ready(ctx); err != nil {
				t.Fatalf("Ready after recovery: %v", err)
			}
			srv.serve(tc.status, tc.doc)
			clk.Advance(time.Minute)
			r.Key(ctx, "unknown") // triggers a refetch of the bad document
			if _, err := r.Key(ctx, ec.Kid); err != nil {
				t.Fatalf("good key lost to a bad document: %v", err)
			}
		})
	}
}

func TestRemoteEmptySet(t *testing.T) {
	srv := newJWKSServer(t, `{"keys":[]}`)
	r := newTestRemote(t, srv.URL, newClock(fixedNow))
	if err := r.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Key(context.Background(), ""); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("err = %v", err)
	}
}

func TestRemoteStartsBeforeServer(t *testing.T) {
	ec := mustJWK(t, token.ES256)
	srv := newJWKSServer(t, "")
	srv.serve(http.StatusServiceUnavailable, "")
	clk := newClock(fixedNow)
	r := newTestRemote(t, srv.URL, clk)
	ctx := context.Background()
	for range 20 {
		if err := r.Ready(ctx); err == nil {
			t.Fatal("ready without keys")
		}
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches while down, want 1 per second", n)
	}
	srv.serve(http.StatusOK, jwksOf(t, ec))
	clk.Advance(time.Second)
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("not ready a second after the server came up: %v", err)
	}
}

func TestRemoteConcurrentFirstUseSharesOneFetch(t *testing.T) {
	ec := mustJWK(t, token.ES256)
	release := make(chan struct{})
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		w.Write([]byte(jwksOf(t, ec)))
	}))
	t.Cleanup(srv.Close)
	r := newTestRemote(t, srv.URL, newClock(fixedNow))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := r.Key(context.Background(), ec.Kid)
			errs <- err
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

func TestRemoteCallerCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	r := newTestRemote(t, srv.URL, newClock(fixedNow))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Key(ctx, "k"); !errors.Is(err, token.ErrKeysUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRemoteValidates(t *testing.T) {
	for _, cfg := range []Config{
		{URL: ""},
		{URL: "/relative"},
		{URL: "file:///etc/passwd"},
		{URL: "http://x", MinRefetch: -1},
	} {
		if _, err := NewRemote(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestVerifyWithRemote(t *testing.T) {
	s := newTestSigner(t, token.ES256)
	srv := newJWKSServer(t, jwksOf(t, mustJWK(t, token.ES256)))
	r := newTestRemote(t, srv.URL, newClock(fixedNow))
	v := token.NewVerifier(r, token.WithIssuer("https://auth.test"), token.WithAudience("latchkey"),
		token.WithNow(func() time.Time { return fixedNow }))
	raw, err := s.Sign(&token.Claims{
		Issuer: "https://auth.test", Subject: "user-1", Audience: []string{"latchkey"},
		ExpiresAt: fixedNow.Add(15 * time.Minute), IssuedAt: fixedNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
}
