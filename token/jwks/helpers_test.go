package jwks

import (
	"crypto"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// fixedNow is the clock of every test that does not move it.
var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock for Config.Now, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

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
