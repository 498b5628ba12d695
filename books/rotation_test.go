package books_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/books"
	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/jwks"
)

// These tests run the books server as a deployment does, over HTTP against
// a JWKS on another server, and take it through the key lifecycle of the
// contract's Signing keys section: next, active, retired, withdrawn.

const (
	rotIssuer   = "http://auth.test"
	rotAudience = "latchkey"
)

// authKeys stands in for the auth server's side of the key lifecycle: it
// signs with the active key and publishes a JWKS the test changes, with
// the Cache-Control the auth server sends.
type authKeys struct {
	*httptest.Server
	active atomic.Pointer[token.Signer]

	mu     sync.Mutex
	doc    []byte
	served int // responses with the current document
	total  int // responses with any document
}

func newAuthKeys(tb testing.TB) *authKeys {
	tb.Helper()
	a := &authKeys{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		doc := a.doc
		a.served++
		a.total++
		a.mu.Unlock()
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	tb.Cleanup(a.Close)
	return a
}

// publish makes keys the whole JWKS.
func (a *authKeys) publish(tb testing.TB, keys ...*token.Signer) {
	tb.Helper()
	set := token.JWKS{Keys: []token.JWK{}}
	for _, k := range keys {
		j, err := token.PublicJWK(k.VerificationKey())
		if err != nil {
			tb.Fatal(err)
		}
		set.Keys = append(set.Keys, j)
	}
	doc, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	a.mu.Lock()
	a.doc, a.served = doc, 0
	a.mu.Unlock()
}

// servedCurrent reports whether the current document has been fetched.
func (a *authKeys) servedCurrent() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.served > 0
}

func (a *authKeys) fetches() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}

// sign issues an access token with the active key, as the auth server
// would, and says which key signed it.
func (a *authKeys) sign(tb testing.TB, jti string, ttl time.Duration) (raw, kid string) {
	tb.Helper()
	s := a.active.Load()
	now := time.Now()
	raw, err := s.Sign(&token.Claims{
		Issuer: rotIssuer, Subject: "2", Audience: []string{rotAudience},
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(ttl),
		ID: jti, SessionID: "sid-2", Username: "anna", Role: "member",
	})
	if err != nil {
		tb.Error(err) // from traffic goroutines too, so not Fatal
		return "", ""
	}
	return raw, s.KeyID()
}

func newRotSigner(tb testing.TB) *token.Signer {
	tb.Helper()
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		tb.Fatal(err)
	}
	kid, err := token.Thumbprint(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := token.NewSigner(token.ES256, kid, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newRotBooks starts a books server over HTTP that verifies against the
// JWKS at jwksURL, refreshed every refresh. Unknown kids may refetch once
// an hour only, so any key it learns during a test it learns from the
// regular refresh. It returns once /readyz says the keys have loaded.
func newRotBooks(tb testing.TB, jwksURL string, refresh time.Duration, leeway time.Duration) (string, *jwks.Remote) {
	tb.Helper()
	remote, err := jwks.NewRemote(jwks.Config{URL: jwksURL, MaxAge: refresh, MinRefetch: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	store, err := books.Open(context.Background(), ":memory:")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	h, err := books.New(books.Config{
		Store:    store,
		Verifier: token.NewVerifier(remote, token.WithIssuer(rotIssuer), token.WithAudience(rotAudience), token.WithLeeway(leeway)),
		Ready:    remote.Ready,
	})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if status, _ := getBooks(tb, srv.URL+"/readyz", ""); status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("books server not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv.URL, remote
}

// getBooks calls url with raw as the bearer token and returns the status and
// the WWW-Authenticate header. A transport error is reported and returns 0.
func getBooks(tb testing.TB, url, raw string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Error(err)
		return 0, ""
	}
	if raw != "" {
		req.Header.Set("Authorization", "Bearer "+raw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Error(err)
		return 0, ""
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// TestKeyRotationUnderTraffic rotates the signing key twice, a second
// apart, under continuous traffic with fresh tokens, and drops the first
// key once every token it signed has expired. Each key is published as
// next before anything is signed with it, so a verifier that refreshes on
// its schedule refuses nothing.
func TestKeyRotationUnderTraffic(t *testing.T) {
	const (
		refresh = 100 * time.Millisecond // the books server's JWKS interval
		ttl     = time.Second            // access token lifetime
		leeway  = time.Second            // exp is whole seconds, so a token may lose up to 1 s of ttl
		reuse   = 200 * time.Millisecond // a client uses each token this long, so cache hits and misses mix
	)
	k1, k2, k3, k4 := newRotSigner(t), newRotSigner(t), newRotSigner(t), newRotSigner(t)
	auth := newAuthKeys(t)
	auth.active.Store(k1)
	auth.publish(t, k1, k2) // k1 active, k2 next
	booksURL, remote := newRotBooks(t, auth.URL+"/.well-known/jwks.json", refresh, leeway)

	type failure struct {
		status int
		kid    string
		at     time.Duration
	}
	var (
		mu       sync.Mutex
		failures []failure
		accepted = map[string]int{}
		stop     = make(chan struct{})
		workers  sync.WaitGroup
	)
	start := time.Now()
	for w := range 4 {
		workers.Go(func() {
			var raw, kid string
			var signed time.Time
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if raw == "" || time.Since(signed) > reuse {
					raw, kid = auth.sign(t, fmt.Sprintf("w%d-%d", w, n), ttl)
					signed = time.Now()
				}
				status, _ := getBooks(t, booksURL+"/books", raw)
				mu.Lock()
				if status == http.StatusOK {
					accepted[kid]++
				} else {
					failures = append(failures, failure{status, kid, time.Since(start)})
				}
				mu.Unlock()
			}
		})
	}

	time.Sleep(500 * time.Millisecond)
	auth.publish(t, k1, k2, k3) // rotate: k1 retired, k2 active, k3 next
	auth.active.Store(k2)
	rotated := time.Now()

	time.Sleep(time.Second)
	auth.publish(t, k1, k2, k3, k4) // rotate again: k3 active, k4 next
	auth.active.Store(k3)

	// k1's last token expires ttl + leeway after the first rotation (plus
	// however long its signing took); only then does the auth server drop
	// it.
	time.Sleep(time.Until(rotated.Add(ttl + leeway + 100*time.Millisecond)))
	auth.publish(t, k2, k3, k4)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	workers.Wait()

	mu.Lock()
	defer mu.Unlock()
	for _, f := range failures {
		t.Errorf("status %d for a token of %.8s… at %v", f.status, f.kid, f.at.Round(time.Millisecond))
	}
	for i, k := range []*token.Signer{k1, k2, k3} {
		if accepted[k.KeyID()] == 0 {
			t.Errorf("no request with a token of key %d: the traffic did not span the rotations", i+1)
		}
	}
	t.Logf("%d requests accepted across two rotations: %d with k1, %d with k2, %d with k3; %d JWKS fetches",
		accepted[k1.KeyID()]+accepted[k2.KeyID()]+accepted[k3.KeyID()],
		accepted[k1.KeyID()], accepted[k2.KeyID()], accepted[k3.KeyID()], auth.fetches())

	// The drop itself reached the books server: a token k1 signs now, as a
	// thief holding k1 would, is refused.
	waitWithdrawn(t, remote, k1.KeyID())
	auth.active.Store(k1)
	late, _ := auth.sign(t, "late", time.Minute)
	if status, _ := getBooks(t, booksURL+"/books", late); status != http.StatusUnauthorized {
		t.Fatalf("token of the dropped key: status %d, want 401", status)
	}
}

// waitWithdrawn waits until the books server's key source no longer holds
// kid, which happens when a fetch of a JWKS without it lands. Lookups start
// refreshes as requests do, so this needs no traffic.
func waitWithdrawn(tb testing.TB, remote *jwks.Remote, kid string) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, err := remote.Key(context.Background(), kid)
		if errors.Is(err, token.ErrUnknownKey) {
			return
		}
		if err != nil || time.Now().After(deadline) {
			tb.Fatalf("key %.8s… still held: %v", kid, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKeyWithdrawnForCause withdraws the active key from the JWKS, as
// `latchkey keys retire KID` does: from the books server's next fetch on,
// its tokens are refused, including one the books server had verified and
// cached.
func TestKeyWithdrawnForCause(t *testing.T) {
	withdrawn, next := newRotSigner(t), newRotSigner(t)
	auth := newAuthKeys(t)
	auth.active.Store(withdrawn)
	auth.publish(t, withdrawn, next)
	booksURL, remote := newRotBooks(t, auth.URL+"/.well-known/jwks.json", 200*time.Millisecond, 30*time.Second)

	stolen, _ := auth.sign(t, "stolen", 15*time.Minute)
	for i := range 2 { // the second is answered from the verified-token cache
		if status, _ := getBooks(t, booksURL+"/books", stolen); status != http.StatusOK {
			t.Fatalf("request %d before the withdrawal: status %d", i+1, status)
		}
	}

	auth.publish(t, next)
	auth.active.Store(next)
	fresh, _ := auth.sign(t, "fresh", 15*time.Minute)

	// Requests keep the books server's refresh going, as traffic would.
	deadline := time.Now().Add(5 * time.Second)
	for !auth.servedCurrent() {
		if time.Now().After(deadline) {
			t.Fatal("the books server never fetched the JWKS again")
		}
		getBooks(t, booksURL+"/books", fresh)
		time.Sleep(20 * time.Millisecond)
	}
	// The fetch has been answered; wait for the books server to store
	// what it got, which its key source shows.
	waitWithdrawn(t, remote, withdrawn.KeyID())

	status, challenge := getBooks(t, booksURL+"/books", stolen)
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Fatalf("cached token of the withdrawn key: status %d, WWW-Authenticate %q; want 401 invalid_token", status, challenge)
	}
	if status, _ := getBooks(t, booksURL+"/books", fresh); status != http.StatusOK {
		t.Fatalf("token of the key that stays: status %d", status)
	}
}
