package token

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fixedNow is the clock of every test that does not move it: far enough in
// the future that fixture tokens never expire by accident.
var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	testIssuer   = "https://auth.test"
	testAudience = "latchkey"
)

var algs = []string{ES256, EdDSA, RS256, HS256}

// clock is a settable clock safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func validClaims() *Claims {
	return &Claims{
		Issuer:    testIssuer,
		Subject:   "user-1",
		Audience:  []string{testAudience},
		ExpiresAt: fixedNow.Add(15 * time.Minute),
		IssuedAt:  fixedNow,
		NotBefore: fixedNow,
		ID:        "jti-1",
		SessionID: "sid-1",
		Username:  "anna",
		Role:      "member",
	}
}

// newTestSigner returns a Signer with a fresh key; asymmetric kids are
// thumbprints, as the auth server makes them.
func newTestSigner(tb testing.TB, alg string) *Signer {
	tb.Helper()
	if alg == HS256 {
		s, err := NewHMACSigner([]byte("0123456789abcdef0123456789abcdef-test"))
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
	priv := mustCachedKey(tb, alg)
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := NewSigner(alg, kid, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// mustCachedKey returns one generated key per algorithm per test binary,
// because RSA generation would otherwise dominate the test run.
var (
	keyCacheMu sync.Mutex
	keyCache   = map[string]crypto.Signer{}
)

func mustCachedKey(tb testing.TB, alg string) crypto.Signer {
	tb.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	if k, ok := keyCache[alg]; ok {
		return k
	}
	k := mustGenerateKey(tb, alg)
	keyCache[alg] = k
	return k
}

func mustGenerateKey(tb testing.TB, alg string) crypto.Signer {
	tb.Helper()
	k, err := GenerateKey(alg)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustSign(tb testing.TB, s *Signer, c *Claims) string {
	tb.Helper()
	raw, err := s.Sign(c)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func newTestVerifier(keys KeySource, opts ...Option) *Verifier {
	base := []Option{WithIssuer(testIssuer), WithAudience(testAudience), WithNow(func() time.Time { return fixedNow })}
	return NewVerifier(keys, append(base, opts...)...)
}

// handMade builds a token from raw header and claims JSON and a raw
// signature, for attacks no honest signer would produce.
func handMade(header, claims string, sig []byte) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims)) + "." + b64.EncodeToString(sig)
}

func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// fixtureSigners loads the committed test-only keys in testdata/keys, so
// that the fuzz corpus in testdata/fuzz names kids that exist. They guard
// nothing: never use them outside tests.
func fixtureSigners(tb testing.TB) map[string]*Signer {
	tb.Helper()
	out := map[string]*Signer{}
	for _, alg := range algs {
		path := filepath.Join("testdata", "keys", alg+".pem")
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatalf("read fixture (regenerate with go test -run TestFixtures -update): %v", err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			tb.Fatalf("%s: no PEM block", path)
		}
		var s *Signer
		if alg == HS256 {
			s, err = NewHMACSigner(block.Bytes)
		} else {
			var priv any
			if priv, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
				tb.Fatal(err)
			}
			signer := priv.(crypto.Signer)
			var kid string
			if kid, err = Thumbprint(signer.Public()); err != nil {
				tb.Fatal(err)
			}
			s, err = NewSigner(alg, kid, signer)
		}
		if err != nil {
			tb.Fatal(err)
		}
		out[alg] = s
	}
	return out
}

func fixtureVerifier(tb testing.TB) (*Verifier, map[string]*Signer) {
	tb.Helper()
	signers := fixtureSigners(tb)
	var keys []Key
	for _, alg := range algs {
		keys = append(keys, signers[alg].VerificationKey())
	}
	return newTestVerifier(StaticKeys(keys...)), signers
}
