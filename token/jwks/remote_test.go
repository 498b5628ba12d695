package jwks

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
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
	header http.Header   // added to every response
	gate   chan struct{} // when set, responses wait until it is closed
}

func newJWKSServer(tb testing.TB, doc string) *jwksServer {
	tb.Helper()
	s := &jwksServer{status: http.StatusOK, doc: doc}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, doc, header, gate := s.status, s.doc, s.header, s.gate
		s.mu.Unlock()
		if gate != nil {
			<-gate
		}
		for k, v := range header {
			w.Header()[k] = v
		}
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

func (s *jwksServer) setHeader(h http.Header) {
	s.mu.Lock()
	s.header = h
	s.mu.Unlock()
}

// hold makes responses wait until the returned function is called, which
// the test's cleanup also does.
func (s *jwksServer) hold(tb testing.TB) (release func()) {
	gate := make(chan struct{})
	s.mu.Lock()
	s.gate = gate
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(gate)
		})
	}
	tb.Cleanup(release)
	return release
}

func newTestRemote(tb testing.TB, url string, clk *clock) *Remote {
	tb.Helper()
	return newTestRemoteConfig(tb, Config{URL: url, MinRefetch: 30 * time.Second, MaxAge: time.Hour}, clk)
}

// newTestRemoteConfig returns a Remote on cfg whose clock and refresh timer
// are clk.
func newTestRemoteConfig(tb testing.TB, cfg Config, clk *clock) *Remote {
	tb.Helper()
	cfg.Now = clk.Now
	r, err := NewRemote(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	r.after = clk.AfterFunc
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

// rotKey is one signing key of an auth server whose keys rotate: each
// newRotKey is a new key, where newTestSigner keeps one per algorithm.
type rotKey struct {
	signer *token.Signer
	jwk    token.JWK
}

func newRotKey(tb testing.TB) rotKey {
	tb.Helper()
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		tb.Fatal(err)
	}
	kid, err := token.Thumbprint(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return rotKeyWithID(tb, kid, priv)
}

// rotKeyWithID is a key published under kid whatever its material, for a
// JWKS that puts other material under a kid it served before.
func rotKeyWithID(tb testing.TB, kid string, priv crypto.Signer) rotKey {
	tb.Helper()
	s, err := token.NewSigner(token.ES256, kid, priv)
	if err != nil {
		tb.Fatal(err)
	}
	j, err := token.PublicJWK(s.VerificationKey())
	if err != nil {
		tb.Fatal(err)
	}
	return rotKey{signer: s, jwk: j}
}

func (k rotKey) kid() string { return k.jwk.Kid }

// sign returns a token valid for a day from fixedNow, so tests can move the
// clock by minutes without tokens expiring.
func (k rotKey) sign(tb testing.TB, jti string) string {
	tb.Helper()
	raw, err := k.signer.Sign(&token.Claims{
		Issuer: "https://auth.test", Subject: "user-1", Audience: []string{"latchkey"},
		ExpiresAt: fixedNow.Add(24 * time.Hour), IssuedAt: fixedNow, ID: jti,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func jwksOfKeys(tb testing.TB, keys ...rotKey) string {
	tb.Helper()
	jwks := make([]token.JWK, len(keys))
	for i, k := range keys {
		jwks[i] = k.jwk
	}
	return jwksOf(tb, jwks...)
}

func newRemoteVerifier(r *Remote, clk *clock) *token.Verifier {
	return token.NewVerifier(r, token.WithIssuer("https://auth.test"), token.WithAudience("latchkey"),
		token.WithNow(clk.Now))
}

func mustKey(tb testing.TB, r *Remote, kid string) {
	tb.Helper()
	if _, err := r.Key(context.Background(), kid); err != nil {
		tb.Fatalf("Key(%.8s…): %v", kid, err)
	}
}

func mustHits(tb testing.TB, srv *jwksServer, want int64, why string) {
	tb.Helper()
	if n := srv.hits.Load(); n != want {
		tb.Fatalf("%d fetches, want %d: %s", n, want, why)
	}
}

func TestRemoteRefreshesOnInterval(t *testing.T) {
	active, next := newRotKey(t), newRotKey(t)
	srv := newJWKSServer(t, jwksOfKeys(t, active))
	clk := newClock(fixedNow)
	// An unknown kid may refetch once a day only, so any new key the test
	// sees came by the interval refresh.
	r := newTestRemoteConfig(t, Config{URL: srv.URL, MinRefetch: 24 * time.Hour, MaxAge: time.Minute}, clk)
	ctx := context.Background()
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	srv.serve(http.StatusOK, jwksOfKeys(t, active, next)) // the auth server publishes its next key
	clk.Advance(time.Minute - time.Millisecond)
	mustKey(t, r, active.kid())
	if _, err := r.Key(ctx, next.kid()); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("next key before the refresh: err = %v, want token.ErrUnknownKey", err)
	}
	waitIdle(t, r)
	mustHits(t, srv, 1, "nothing is due before MaxAge, and unknown kids may not fetch")

	clk.Advance(time.Millisecond)
	mustKey(t, r, active.kid()) // a lookup of a known key starts the refresh
	waitIdle(t, r)
	mustHits(t, srv, 2, "one refresh once MaxAge has passed")
	mustKey(t, r, next.kid())
	mustHits(t, srv, 2, "the next key came with the refresh")

	// Each fetch sets the next refresh.
	clk.Advance(time.Minute)
	mustKey(t, r, active.kid())
	waitIdle(t, r)
	mustHits(t, srv, 3, "a refresh every MaxAge")
}

func TestRemoteRefreshDoesNotDelayLookups(t *testing.T) {
	// While a refresh is under way, lookups and cache hits answer from the
	// set in hand: the network is never on the request path while keys
	// are held. The withdrawn key goes when the refresh lands, cached
	// tokens included.
	withdrawn, kept := newRotKey(t), newRotKey(t)
	srv := newJWKSServer(t, jwksOfKeys(t, withdrawn, kept))
	clk := newClock(fixedNow)
	r := newTestRemoteConfig(t, Config{URL: srv.URL, MaxAge: time.Minute}, clk)
	v := newRemoteVerifier(r, clk)
	ctx := context.Background()
	gone, stays := withdrawn.sign(t, "gone"), kept.sign(t, "stays")
	for _, raw := range []string{gone, stays} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}

	srv.serve(http.StatusOK, jwksOfKeys(t, kept)) // retired for cause
	release := srv.hold(t)
	clk.Advance(time.Minute)
	for range 3 {
		// Cache hits alone start the refresh, and do not wait for it.
		for _, raw := range []string{gone, stays} {
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatalf("before the refresh has landed: %v", err)
			}
		}
		mustKey(t, r, withdrawn.kid())
	}
	release()
	waitIdle(t, r)
	mustHits(t, srv, 2, "the cache hits started one refresh")
	if _, err := v.Verify(ctx, gone); !errors.Is(err, token.ErrUnknownKey) {
		t.Fatalf("cached token of a withdrawn key after the refresh: err = %v, want token.ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, stays); err != nil {
		t.Fatalf("cached token of a kept key after the refresh: %v", err)
	}
	mustHits(t, srv, 2, "the refused token's unknown kid is within MinRefetch of the refresh")
}

func TestRemoteRefetchReplacesWholeSet(t *testing.T) {
	// GHSA-675f-rq2r-jw82: a JWKS client that merged each fetched set into
	// the old one kept withdrawn keys verifying. Every fetch here replaces
	// the set, and the version moves exactly when a key may have gone.
	a, b, c := newRotKey(t), newRotKey(t), newRotKey(t)
	bPriv, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	bReplaced := rotKeyWithID(t, b.kid(), bPriv)
	tokA, tokB, tokBReplaced, tokC := a.sign(t, "a"), b.sign(t, "b"), bReplaced.sign(t, "b2"), c.sign(t, "c")

	srv := newJWKSServer(t, jwksOfKeys(t, a, b))
	clk := newClock(fixedNow)
	r := newTestRemoteConfig(t, Config{URL: srv.URL, MaxAge: time.Minute}, clk)
	v := newRemoteVerifier(r, clk) // one verifier throughout, so its cache carries over
	ctx := context.Background()
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{tokA, tokB} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}

	type verdict struct {
		raw  string
		want error // nil: verifies
	}
	steps := []struct {
		name     string
		publish  []rotKey
		newVer   bool
		verdicts []verdict
	}{
		{"a next key is added", []rotKey{a, b, c}, false,
			[]verdict{{tokA, nil}, {tokB, nil}, {tokC, nil}}},
		{"the same set again", []rotKey{a, b, c}, false,
			[]verdict{{tokA, nil}, {tokB, nil}, {tokC, nil}}},
		{"the same set in another order", []rotKey{c, a, b}, false,
			[]verdict{{tokA, nil}, {tokB, nil}, {tokC, nil}}},
		{"a is dropped", []rotKey{b, c}, true,
			[]verdict{{tokA, token.ErrUnknownKey}, {tokB, nil}, {tokC, nil}}},
		{"b's kid names other material", []rotKey{bReplaced, c}, true,
			[]verdict{{tokA, token.ErrUnknownKey}, {tokB, token.ErrSignature}, {tokBReplaced, nil}, {tokC, nil}}},
		{"a dropped key does not come back with a later set", []rotKey{bReplaced, c}, false,
			[]verdict{{tokA, token.ErrUnknownKey}, {tokB, token.ErrSignature}, {tokC, nil}}},
		{"an empty set withdraws every key", []rotKey{}, true,
			[]verdict{{tokA, token.ErrUnknownKey}, {tokBReplaced, token.ErrUnknownKey}, {tokC, token.ErrUnknownKey}}},
	}
	for i, step := range steps {
		before := r.Version()
		srv.serve(http.StatusOK, jwksOfKeys(t, step.publish...))
		clk.Advance(time.Minute)
		r.Version() // what a cache hit calls: starts the refresh
		waitIdle(t, r)
		mustHits(t, srv, int64(i+2), step.name+": one fetch per refresh")
		if changed := r.Version() != before; changed != step.newVer {
			t.Fatalf("%s: version changed = %v, want %v", step.name, changed, step.newVer)
		}
		// Twice, so that the second answer for each token may come from
		// the cache.
		for range 2 {
			for j, vd := range step.verdicts {
				_, err := v.Verify(ctx, vd.raw)
				if (vd.want == nil && err != nil) || (vd.want != nil && !errors.Is(err, vd.want)) {
					t.Fatalf("%s: token %d: err = %v, want %v", step.name, j, err, vd.want)
				}
			}
		}
		mustHits(t, srv, int64(i+2), step.name+": unknown kids right after a refresh do not fetch")
	}
}

func TestRemoteFailedRefreshKeepsSetAndBacksOff(t *testing.T) {
	a := newRotKey(t)
	srv := newJWKSServer(t, jwksOfKeys(t, a))
	clk := newClock(fixedNow)
	r := newTestRemoteConfig(t, Config{URL: srv.URL, MaxAge: time.Minute}, clk)
	v := newRemoteVerifier(r, clk)
	ctx := context.Background()
	tokA := a.sign(t, "a")
	if _, err := v.Verify(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	version := r.Version()
	hits := int64(1)

	// refreshAt checks that nothing is fetched until wait has passed, and
	// that a refresh is fetched then.
	refreshAt := func(wait time.Duration, why string) {
		t.Helper()
		clk.Advance(wait - time.Millisecond)
		r.Version()
		waitIdle(t, r)
		mustHits(t, srv, hits, why+": too early")
		clk.Advance(time.Millisecond)
		r.Version()
		waitIdle(t, r)
		hits++
		mustHits(t, srv, hits, why)
	}
	keepsOldSet := func(why string) {
		t.Helper()
		if _, err := v.Verify(ctx, tokA); err != nil {
			t.Fatalf("%s: cached token: %v", why, err)
		}
		mustKey(t, r, a.kid())
		if got := r.Version(); got != version {
			t.Fatalf("%s: version %d, want %d: a failure changed the set", why, got, version)
		}
	}

	srv.serve(http.StatusInternalServerError, `{"keys":[]}`)
	refreshAt(time.Minute, "the regular refresh")
	keepsOldSet("after a 500")

	// Retries after 1 s, doubling up to MaxAge and staying there; every
	// kind of failure counts alike.
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		switch i {
		case 2:
			srv.serve(http.StatusOK, `<html>maintenance</html>`)
		case 4:
			srv.serve(http.StatusOK, jwksOf(t, token.JWK{Kty: "EC", Kid: "enc-only", Use: "enc"}))
		}
		why := fmt.Sprintf("retry %d", i+1)
		refreshAt(wait, why)
		keepsOldSet(why)
	}

	// A server gone altogether answers nothing, so there are no hits to
	// count; the set must still outlast the failed tries.
	srv.Close()
	for range 3 {
		clk.Advance(time.Minute)
		r.Version()
		waitIdle(t, r)
		keepsOldSet("server closed")
	}
}

func TestRemoteRecoversAndResetsBackOff(t *testing.T) {
	a, b := newRotKey(t), newRotKey(t)
	srv := newJWKSServer(t, jwksOfKeys(t, a))
	clk := newClock(fixedNow)
	r := newTestRemoteConfig(t, Config{URL: srv.URL, MaxAge: time.Minute}, clk)
	ctx := context.Background()
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	step := func(d time.Duration) {
		clk.Advance(d)
		r.Version()
		waitIdle(t, r)
	}
	srv.serve(http.StatusServiceUnavailable, "")
	step(time.Minute) // fails
	step(time.Second) // fails
	step(2 * time.Second)
	mustHits(t, srv, 4, "a refresh and two retries")

	srv.serve(http.StatusOK, jwksOfKeys(t, a, b))
	step(4 * time.Second)
	mustHits(t, srv, 5, "the third retry")
	mustKey(t, r, b.kid())

	// Back to the regular interval, and a later failure starts the
	// back-off from 1 s again.
	srv.serve(http.StatusServiceUnavailable, "")
	step(time.Minute - time.Millisecond)
	mustHits(t, srv, 5, "nothing before MaxAge after a good fetch")
	step(time.Millisecond)
	step(time.Second)
	mustHits(t, srv, 7, "the back-off starts again from 1 s")
	mustKey(t, r, b.kid())
}

func TestRemoteUnknownKidsAddNoFetchesToRefreshes(t *testing.T) {
	// Five minutes of made-up kids every second, with a key server that
	// refreshes every minute: the fetches are the initial one and one per
	// MinRefetch, each of which also serves as the regular refresh.
	a := newRotKey(t)
	srv := newJWKSServer(t, jwksOfKeys(t, a))
	clk := newClock(fixedNow)
	r := newTestRemoteConfig(t, Config{URL: srv.URL, MinRefetch: 30 * time.Second, MaxAge: time.Minute}, clk)
	ctx := context.Background()
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	for s := range 300 {
		clk.Advance(time.Second)
		if _, err := r.Key(ctx, fmt.Sprint("made-up-", s)); !errors.Is(err, token.ErrUnknownKey) {
			t.Fatalf("made-up kid: err = %v, want token.ErrUnknownKey", err)
		}
		mustKey(t, r, a.kid())
		waitIdle(t, r)
	}
	mustHits(t, srv, 1+300/30, "one fetch per MinRefetch, and no refresh on top")
}

func TestRemoteHonoursCacheControl(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		maxAge time.Duration // Config.MaxAge
		want   time.Duration // time to the first refresh
	}{
		{"no Cache-Control: MaxAge", nil, time.Minute, time.Minute},
		{"the auth server's max-age=300 does not lengthen MaxAge",
			http.Header{"Cache-Control": {"public, max-age=300"}}, time.Minute, time.Minute},
		{"a shorter max-age shortens it",
			http.Header{"Cache-Control": {"public, max-age=10"}}, time.Minute, 10 * time.Second},
		{"a cache's Age counts against max-age",
			http.Header{"Cache-Control": {"max-age=30"}, "Age": {"12"}}, time.Minute, 18 * time.Second},
		{"an Age beyond max-age: the floor",
			http.Header{"Cache-Control": {"max-age=10"}, "Age": {"60"}}, time.Minute, 5 * time.Second},
		{"an unreadable Age is ignored",
			http.Header{"Cache-Control": {"max-age=20"}, "Age": {"soon"}}, time.Minute, 20 * time.Second},
		{"no-cache: the floor, not a fetch per lookup",
			http.Header{"Cache-Control": {"no-cache"}}, time.Minute, 5 * time.Second},
		{"no-store: the floor",
			http.Header{"Cache-Control": {"no-store"}}, time.Minute, 5 * time.Second},
		{"max-age=0: the floor",
			http.Header{"Cache-Control": {"max-age=0"}}, time.Minute, 5 * time.Second},
		{"an unreadable max-age is stale",
			http.Header{"Cache-Control": {"max-age=soon"}}, time.Minute, 5 * time.Second},
		{"a negative max-age is stale",
			http.Header{"Cache-Control": {"max-age=-5"}}, time.Minute, 5 * time.Second},
		{"the smallest of several, across lines",
			http.Header{"Cache-Control": {"max-age=40", "public, max-age=20"}}, time.Minute, 20 * time.Second},
		{"no-cache beside a max-age wins",
			http.Header{"Cache-Control": {"max-age=40, no-cache"}}, time.Minute, 5 * time.Second},
		{"directive names in any case, quoted values",
			http.Header{"Cache-Control": {`MAX-AGE="15"`}}, time.Minute, 15 * time.Second},
		{"s-maxage is for shared caches, not us",
			http.Header{"Cache-Control": {"s-maxage=7"}}, time.Minute, time.Minute},
		{"a MaxAge below the floor is the operator's to choose",
			http.Header{"Cache-Control": {"max-age=0"}}, 2 * time.Second, 2 * time.Second},
		{"a max-age beyond int64 is very large, not unreadable (RFC 9111 §1.2.2)",
			http.Header{"Cache-Control": {"max-age=99999999999999999999"}}, time.Minute, time.Minute},
		{"a max-age beyond 2^31 s",
			http.Header{"Cache-Control": {"max-age=9999999999"}}, time.Minute, time.Minute},
		{"a signed Age is unreadable, so ignored",
			http.Header{"Cache-Control": {"max-age=20"}, "Age": {"+5"}}, time.Minute, 20 * time.Second},
	}
	a := newRotKey(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, jwksOfKeys(t, a))
			srv.setHeader(tc.header)
			clk := newClock(fixedNow)
			r := newTestRemoteConfig(t, Config{URL: srv.URL, MaxAge: tc.maxAge}, clk)
			if err := r.Ready(context.Background()); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tc.want - time.Millisecond)
			r.Version()
			waitIdle(t, r)
			mustHits(t, srv, 1, "refreshed early")
			clk.Advance(time.Millisecond)
			r.Version()
			waitIdle(t, r)
			mustHits(t, srv, 2, "not refreshed when due")
		})
	}
}

func TestVerifyDuringRefreshes(t *testing.T) {
	// Run with -race: cache hits, misses and unknown-kid lookups meet
	// refreshes that add and drop keys. The key that stays must verify
	// throughout; the one that comes and goes may only be refused as
	// unknown.
	stays, flaps := newRotKey(t), newRotKey(t)
	srv := newJWKSServer(t, jwksOfKeys(t, stays, flaps))
	clk := newClock(fixedNow)
	r := newTestRemoteConfig(t, Config{URL: srv.URL, MinRefetch: time.Second, MaxAge: time.Second}, clk)
	v := newRemoteVerifier(r, clk)
	ctx := context.Background()
	var staysTokens, flapsTokens []string
	for i := range 4 {
		staysTokens = append(staysTokens, stays.sign(t, fmt.Sprint("s", i)))
		flapsTokens = append(flapsTokens, flaps.sign(t, fmt.Sprint("f", i)))
	}
	if err := r.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	var workers sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		workers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := v.Verify(ctx, staysTokens[(g+i)%len(staysTokens)]); err != nil {
					t.Errorf("token of a key never withdrawn: %v", err)
					return
				}
				if _, err := v.Verify(ctx, flapsTokens[(g+i)%len(flapsTokens)]); err != nil && !errors.Is(err, token.ErrUnknownKey) {
					t.Errorf("token of a key coming and going: %v", err)
					return
				}
				runtime.Gosched()
			}
		})
	}
	for i := range 40 {
		if i%2 == 0 {
			srv.serve(http.StatusOK, jwksOfKeys(t, stays))
		} else {
			srv.serve(http.StatusOK, jwksOfKeys(t, stays, flaps))
		}
		// Only the workers' lookups can start this refresh.
		before := srv.hits.Load()
		clk.Advance(time.Second)
		for deadline := time.Now().Add(5 * time.Second); srv.hits.Load() == before; {
			if time.Now().After(deadline) {
				t.Fatalf("refresh %d: the workers' lookups did not start it", i)
			}
			time.Sleep(time.Millisecond)
		}
		waitIdle(t, r)
	}
	close(stop)
	workers.Wait()
	waitIdle(t, r) // so that the next Advance finds the timer the last fetch set

	srv.serve(http.StatusOK, jwksOfKeys(t, stays))
	clk.Advance(time.Second)
	r.Version()
	waitIdle(t, r)
	for _, raw := range flapsTokens {
		if _, err := v.Verify(ctx, raw); !errors.Is(err, token.ErrUnknownKey) {
			t.Fatalf("after the last refresh dropped it: err = %v, want token.ErrUnknownKey", err)
		}
	}
}

// BenchmarkVerifyRemote is token's BenchmarkVerify cached case over a
// Remote, whose Version runs on every cache hit so that a key withdrawn
// from the JWKS refuses cached tokens too. Compare it with
// BenchmarkVerify/ES256/cached in token, which hits over StaticKeys.
func BenchmarkVerifyRemote(b *testing.B) {
	k := newRotKey(b)
	srv := newJWKSServer(b, jwksOfKeys(b, k))
	r, err := NewRemote(Config{URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	v := token.NewVerifier(r, token.WithIssuer("https://auth.test"), token.WithAudience("latchkey"),
		token.WithNow(func() time.Time { return fixedNow }))
	raw := k.sign(b, "bench")
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkVerifyRemoteOverStatic times cache hits over a Remote and over
// StaticKeys of the same key, in alternating blocks within one loop, and
// reports remote/static: what the version check costs a hit. Measured as
// separate benchmarks, the two drift apart with whatever else a shared
// machine is doing; interleaved, the drift lands on both. Blocks rather
// than single calls keep the clock reads out of the figures.
func BenchmarkVerifyRemoteOverStatic(b *testing.B) {
	k := newRotKey(b)
	srv := newJWKSServer(b, jwksOfKeys(b, k))
	r, err := NewRemote(Config{URL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	opts := []token.Option{token.WithIssuer("https://auth.test"), token.WithAudience("latchkey"),
		token.WithNow(func() time.Time { return fixedNow })}
	remote := token.NewVerifier(r, opts...)
	static := token.NewVerifier(token.StaticKeys(k.signer.VerificationKey()), opts...)
	raw := k.sign(b, "bench")
	ctx := context.Background()
	for _, v := range []*token.Verifier{remote, static} {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
	const block = 1000
	var staticTime, remoteTime time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range block {
			static.Verify(ctx, raw)
		}
		t1 := time.Now()
		for range block {
			remote.Verify(ctx, raw)
		}
		remoteTime += time.Since(t1)
		staticTime += t1.Sub(t0)
	}
	n := float64(b.N) * block
	b.ReportMetric(float64(staticTime.Nanoseconds())/n, "static-ns/hit")
	b.ReportMetric(float64(remoteTime.Nanoseconds())/n, "remote-ns/hit")
	b.ReportMetric(float64(remoteTime)/float64(staticTime), "remote/static")
}
