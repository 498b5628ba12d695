package jwks

import (
	"crypto"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// fixedNow is the clock of every test that does not move it.
var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock for Config.Now, safe for concurrent use. It is
// also the Remote's refresh timer: Advance runs, in the caller's goroutine,
// every timer function whose time has come.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newClock(t time.Time) *clock { return &clock{now: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var fire []func()
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		fire = append(fire, t.f)
		return true
	})
	c.mu.Unlock()
	for _, f := range fire {
		f()
	}
}

// AfterFunc has the shape of Remote.after: it runs f once the clock has
// advanced by d, and returns what stops that.
func (c *clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.timers, t)
		if i < 0 {
			return false
		}
		c.timers = slices.Delete(c.timers, i, i+1)
		return true
	}
}

// One key per algorithm per test binary, so that the signer of a test and
// the JWK it publishes for the same algorithm are the same key, and RSA
// generation does not dominate the run.
var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]crypto.Signer{}
)

// newTestSigner returns a Signer whose kid is the key's thumbprint, as the
// auth server makes them.
func newTestSigner(tb testing.TB, alg string) *token.Signer {
	tb.Helper()
	keyCacheMu.Lock()
	priv, ok := keyCache[alg]
	if !ok {
		var err error
		if priv, err = token.GenerateKey(alg); err != nil {
			keyCacheMu.Unlock()
			tb.Fatal(err)
		}
		keyCache[alg] = priv
	}
	keyCacheMu.Unlock()
	kid, err := token.Thumbprint(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := token.NewSigner(alg, kid, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustJWK(tb testing.TB, alg string) token.JWK {
	tb.Helper()
	j, err := token.PublicJWK(newTestSigner(tb, alg).VerificationKey())
	if err != nil {
		tb.Fatal(err)
	}
	return j
}

func jwksOf(tb testing.TB, keys ...token.JWK) string {
	tb.Helper()
	b, err := json.Marshal(token.JWKS{Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
