package token

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testWorld is one verifier trusting a fresh key of every algorithm.
type testWorld struct {
	signers map[string]*Signer
	keys    []Key
}

func newTestWorld(tb testing.TB) *testWorld {
	tb.Helper()
	w := &testWorld{signers: map[string]*Signer{}}
	for _, alg := range algs {
		s := newTestSigner(tb, alg)
		w.signers[alg] = s
		w.keys = append(w.keys, s.VerificationKey())
	}
	return w
}

func (w *testWorld) verifier(opts ...Option) *Verifier {
	return newTestVerifier(StaticKeys(w.keys...), opts...)
}

func TestVerifyAttacks(t *testing.T) {
	w := newTestWorld(t)
	es := w.signers[ES256]
	rs := w.signers[RS256]
	good := mustSign(t, es, validClaims())
	parts := strings.Split(good, ".")
	payload := fmt.Sprintf(`{"iss":%q,"sub":"user-1","aud":%q,"exp":%d,"role":"admin"}`,
		testIssuer, testAudience, fixedNow.Add(time.Hour).Unix())

	type attack struct {
		name string
		raw  string
		want error
	}
	var tests []attack

	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		tests = append(tests,
			attack{"alg " + alg + " unsigned", handMade(`{"alg":"`+alg+`","typ":"JWT"}`, payload, nil), ErrAlgorithm},
			attack{"alg " + alg + " with a signature", handMade(`{"alg":"`+alg+`","kid":"`+es.KeyID()+`"}`, payload, []byte(parts[2])), ErrAlgorithm},
			attack{"alg " + alg + " without the last dot", strings.TrimSuffix(handMade(`{"alg":"`+alg+`"}`, payload, nil), "."), ErrMalformed},
		)
	}

	// Algorithm confusion: an HS256 token whose HMAC key is the ES256/RS256
	// public key in every form a confused verifier might use as the secret.
	for _, s := range []*Signer{es, rs} {
		pub := s.VerificationKey().Public
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		jwk, err := PublicJWK(s.VerificationKey())
		if err != nil {
			t.Fatal(err)
		}
		forms := map[string][]byte{
			"DER": der,
			"PEM": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
			"JWK": []byte(mustJSON(t, jwk)),
		}
		for form, secret := range forms {
			header := `{"alg":"HS256","typ":"JWT","kid":"` + s.KeyID() + `"}`
			input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(input))
			tests = append(tests, attack{"HS256 signed with the " + s.Alg() + " public key as " + form,
				input + "." + b64.EncodeToString(mac.Sum(nil)), ErrAlgorithm})
		}
	}

	tampered := handMade(`{"alg":"ES256","typ":"JWT","kid":"`+es.KeyID()+`"}`, payload, nil)
	tampered = strings.TrimSuffix(tampered, ".") + "." + parts[2]

	other := newTestSignerWithKid(t, ES256, es.KeyID())
	forged := mustSign(t, other, validClaims())
	otherHMAC, err := NewHMACSigner([]byte("another-secret-another-secret-another"))
	if err != nil {
		t.Fatal(err)
	}

	edKid := w.signers[EdDSA].KeyID()
	exp := fixedNow.Add(time.Hour).Unix()
	withKid := func(kid string) string {
		return handMade(`{"alg":"ES256","kid":`+mustJSON(t, kid)+`}`, payload, make([]byte, 64))
	}

	tests = append(tests,
		attack{"tampered payload", tampered, ErrSignature},
		attack{"signature stripped", parts[0] + "." + parts[1] + ".", ErrSignature},
		attack{"signature segment missing", parts[0] + "." + parts[1], ErrMalformed},
		attack{"signature of another message", parts[0] + "." + parts[1] + "." + strings.Split(mustSign(t, es, validClaims()), ".")[2][:10] + parts[2][10:], ErrSignature},
		attack{"signed by another key with the same kid", forged, ErrSignature},
		attack{"HS256 signed with another secret", mustSign(t, otherHMAC, validClaims()), ErrSignature},
		attack{"ES256 header on the Ed25519 key's kid", handMade(`{"alg":"ES256","kid":"`+edKid+`"}`, payload, make([]byte, 64)), ErrAlgorithm},
		attack{"EdDSA header on the ES256 key's kid", handMade(`{"alg":"EdDSA","kid":"`+es.KeyID()+`"}`, payload, make([]byte, 64)), ErrAlgorithm},
		attack{"ES256 header without kid finds only the HS256 key", handMade(`{"alg":"ES256"}`, payload, make([]byte, 64)), ErrAlgorithm},
		attack{"HS512", handMade(`{"alg":"HS512","kid":"`+es.KeyID()+`"}`, payload, make([]byte, 64)), ErrAlgorithm},
		attack{"PS256", handMade(`{"alg":"PS256","kid":"`+rs.KeyID()+`"}`, payload, make([]byte, 256)), ErrAlgorithm},
		attack{"ES384", handMade(`{"alg":"ES384","kid":"`+es.KeyID()+`"}`, payload, make([]byte, 96)), ErrAlgorithm},
		attack{"alg missing", handMade(`{"kid":"`+es.KeyID()+`"}`, payload, make([]byte, 64)), ErrAlgorithm},
		attack{"alg not a string", handMade(`{"alg":["ES256"],"kid":"`+es.KeyID()+`"}`, payload, make([]byte, 64)), ErrAlgorithm},
		attack{"kid path traversal", withKid("../../etc/passwd"), ErrUnknownKey},
		attack{"kid SQL", withKid("' OR '1'='1' --"), ErrUnknownKey},
		attack{"kid with NUL", withKid(es.KeyID() + "\x00"), ErrUnknownKey},
		attack{"kid differing in case", withKid(strings.ToUpper(es.KeyID())), ErrUnknownKey},
		attack{"kid unknown", withKid("no-such-key"), ErrUnknownKey},
		attack{"kid huge", withKid(strings.Repeat("k", 4000)), ErrUnknownKey},
		attack{"kid not a string", handMade(`{"alg":"ES256","kid":1}`, payload, make([]byte, 64)), ErrMalformed},
		attack{"typ at+jwt", handMade(`{"alg":"ES256","typ":"at+jwt","kid":"`+es.KeyID()+`"}`, payload, make([]byte, 64)), ErrMalformed},
		attack{"typ not a string", handMade(`{"alg":"ES256","typ":1,"kid":"`+es.KeyID()+`"}`, payload, make([]byte, 64)), ErrMalformed},
		attack{"crit header", handMade(`{"alg":"ES256","crit":["exp"],"exp":1,"kid":"`+es.KeyID()+`"}`, payload, make([]byte, 64)), ErrMalformed},
		attack{"header not JSON", b64.EncodeToString([]byte("{")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		attack{"payload not JSON", parts[0] + "." + b64.EncodeToString([]byte("[")) + "." + parts[2], ErrMalformed},
		attack{"exp a string", handMade(`{"alg":"ES256","kid":"`+es.KeyID()+`"}`, `{"sub":"u","exp":"`+fmt.Sprint(exp)+`"}`, make([]byte, 64)), ErrMalformed},
		attack{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		attack{"standard base64 alphabet", parts[0] + "." + parts[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[2]) + "+", ErrMalformed},
		attack{"four segments", good + ".x", ErrMalformed},
		attack{"empty", "", ErrMalformed},
		attack{"oversized", good + "." + strings.Repeat("A", DefaultMaxTokenSize), ErrTooLarge},
	)

	v := w.verifier()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v does not match ErrInvalid", err)
			}
			if c != nil {
				t.Fatalf("claims returned with error: %+v", c)
			}
		})
	}
	if n := v.cache.len(); n != 0 {
		t.Fatalf("%d rejected tokens were cached", n)
	}
}

// newTestSignerWithKid signs with a fresh key under someone else's kid.
func newTestSignerWithKid(tb testing.TB, alg, kid string) *Signer {
	tb.Helper()
	s, err := NewSigner(alg, kid, mustGenerateKey(tb, alg))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestVerifyClaims(t *testing.T) {
	w := newTestWorld(t)
	tests := []struct {
		name   string
		mutate func(c *Claims)
		opts   []Option
		want   error // nil: accepted
	}{
		{name: "valid", mutate: func(c *Claims) {}},
		{name: "expired", mutate: func(c *Claims) { c.ExpiresAt = fixedNow.Add(-time.Minute) }, want: ErrExpired},
		{name: "expired within leeway", mutate: func(c *Claims) { c.ExpiresAt = fixedNow.Add(-29 * time.Second) }},
		{name: "expired exactly at leeway", mutate: func(c *Claims) { c.ExpiresAt = fixedNow.Add(-30 * time.Second) }, want: ErrExpired},
		{name: "no leeway", mutate: func(c *Claims) { c.ExpiresAt = fixedNow.Add(-time.Second) }, opts: []Option{WithLeeway(0)}, want: ErrExpired},
		{name: "exp now without leeway", mutate: func(c *Claims) { c.ExpiresAt = fixedNow }, opts: []Option{WithLeeway(0)}, want: ErrExpired},
		{name: "not yet valid", mutate: func(c *Claims) { c.NotBefore = fixedNow.Add(time.Minute) }, want: ErrNotYetValid},
		{name: "nbf within leeway", mutate: func(c *Claims) { c.NotBefore = fixedNow.Add(30 * time.Second) }},
		{name: "nbf absent", mutate: func(c *Claims) { c.NotBefore = time.Time{} }},
		{name: "wrong issuer", mutate: func(c *Claims) { c.Issuer = "https://evil.test" }, want: ErrIssuer},
		{name: "issuer absent", mutate: func(c *Claims) { c.Issuer = "" }, want: ErrIssuer},
		{name: "issuer differing in case", mutate: func(c *Claims) { c.Issuer = strings.ToUpper(testIssuer) }, want: ErrIssuer},
		{name: "wrong audience", mutate: func(c *Claims) { c.Audience = []string{"books"} }, want: ErrAudience},
		{name: "audience absent", mutate: func(c *Claims) { c.Audience = nil }, want: ErrAudience},
		{name: "audience among several", mutate: func(c *Claims) { c.Audience = []string{"books", testAudience} }},
		{name: "issuer unchecked when not configured", mutate: func(c *Claims) { c.Issuer = "x" }, opts: []Option{WithIssuer("")}},
		{name: "audience unchecked when not configured", mutate: func(c *Claims) { c.Audience = nil }, opts: []Option{WithAudience("")}},
	}
	for _, alg := range algs {
		for _, tc := range tests {
			t.Run(alg+"/"+tc.name, func(t *testing.T) {
				c := validClaims()
				tc.mutate(c)
				raw := mustSign(t, w.signers[alg], c)
				got, err := w.verifier(tc.opts...).Verify(context.Background(), raw)
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if err == nil && got.Subject != c.Subject {
					t.Fatalf("claims = %+v", got)
				}
			})
		}
	}
}

// TestVerifyMissingClaims uses hand-signed payloads because Sign refuses to
// produce them.
func TestVerifyMissingClaims(t *testing.T) {
	s := newTestSigner(t, HS256)
	exp := fixedNow.Add(time.Hour).Unix()
	tests := []struct {
		name    string
		payload string
	}{
		{"no exp", fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"u"}`, testIssuer, testAudience)},
		{"exp null", fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"u","exp":null}`, testIssuer, testAudience)},
		{"no sub", fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":%d}`, testIssuer, testAudience, exp)},
		{"empty sub", fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":%d,"sub":""}`, testIssuer, testAudience, exp)},
	}
	v := newTestVerifier(StaticKeys(s.VerificationKey()))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := hmacToken(s.VerificationKey().Secret, `{"alg":"HS256","typ":"JWT"}`, tc.payload)
			if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrMissingClaim) {
				t.Fatalf("err = %v, want ErrMissingClaim", err)
			}
		})
	}
}

func hmacToken(secret []byte, header, payload string) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

func TestVerifyHeaderTyp(t *testing.T) {
	s := newTestSigner(t, HS256)
	payload := mustJSON(t, toWire(validClaims()))
	v := newTestVerifier(StaticKeys(s.VerificationKey()))
	for _, header := range []string{`{"alg":"HS256"}`, `{"alg":"HS256","typ":"jwt"}`, `{"alg":"HS256","typ":"application/JWT"}`} {
		if _, err := v.Verify(context.Background(), hmacToken(s.VerificationKey().Secret, header, payload)); err != nil {
			t.Errorf("%s: %v", header, err)
		}
	}
}

func TestVerifyMaxTokenSize(t *testing.T) {
	s := newTestSigner(t, HS256)
	raw := mustSign(t, s, validClaims())
	v := newTestVerifier(StaticKeys(s.VerificationKey()), WithMaxTokenSize(len(raw)))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("token at the limit: %v", err)
	}
	v = newTestVerifier(StaticKeys(s.VerificationKey()), WithMaxTokenSize(len(raw)-1))
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("token over the limit: %v", err)
	}
}

type failingKeys struct{ err error }

func (f failingKeys) Key(context.Context, string) (Key, error) { return Key{}, f.err }

func TestVerifyKeySourceFailure(t *testing.T) {
	raw := mustSign(t, newTestSigner(t, ES256), validClaims())
	_, err := newTestVerifier(failingKeys{errors.New("db down")}).Verify(context.Background(), raw)
	if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrKeysUnavailable and not ErrInvalid", err)
	}
	_, err = newTestVerifier(nil).Verify(context.Background(), raw)
	if !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("nil KeySource: err = %v", err)
	}
}

func TestVerifyRefusesHandBuiltMismatchedKey(t *testing.T) {
	// A Key whose Alg says ES256 but holds an RSA key must not be used at
	// all, whatever the token says.
	rs := newTestSigner(t, RS256)
	raw := mustSign(t, rs, validClaims())
	bad := Key{ID: rs.KeyID(), Alg: RS256, Public: mustCachedKey(t, ES256).Public()}
	if _, err := newTestVerifier(StaticKeys(bad)).Verify(context.Background(), raw); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
}

func TestCacheDoesNotBypassExpiry(t *testing.T) {
	s := newTestSigner(t, ES256)
	clk := newClock(fixedNow)
	v := newTestVerifier(StaticKeys(s.VerificationKey()), WithNow(clk.Now))
	c := validClaims()
	raw := mustSign(t, s, c)
	ctx := context.Background()
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if v.cache.len() != 1 {
		t.Fatal("valid token not cached")
	}
	clk.Advance(c.ExpiresAt.Sub(fixedNow) + 29*time.Second)
	if _, err := v.Verify(ctx, raw); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := v.Verify(ctx, raw); !errors.Is(err, ErrExpired) {
		t.Fatalf("cached token past exp+leeway: err = %v, want ErrExpired", err)
	}
	if v.cache.len() != 0 {
		t.Fatal("expired entry left in the cache")
	}
}

// TestCacheAgreesWithFreshVerification checks the time rule at its edges
// both ways: a cache hit must answer exactly as a fresh verification would.
func TestCacheAgreesWithFreshVerification(t *testing.T) {
	s := newTestSigner(t, EdDSA)
	c := validClaims()
	c.NotBefore = fixedNow.Add(10 * time.Second)
	raw := mustSign(t, s, c)
	clk := newClock(fixedNow)
	cached := newTestVerifier(StaticKeys(s.VerificationKey()), WithNow(clk.Now))
	if _, err := cached.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{
		c.NotBefore.Add(-31 * time.Second), c.NotBefore.Add(-30 * time.Second),
		c.ExpiresAt.Add(29 * time.Second), c.ExpiresAt.Add(30 * time.Second), c.ExpiresAt.Add(31 * time.Second),
	} {
		fresh := newTestVerifier(StaticKeys(s.VerificationKey()), WithNow(func() time.Time { return at }), WithCacheSize(0))
		_, wantErr := fresh.Verify(context.Background(), raw)
		// Re-insert before each probe, since a rejected hit evicts.
		cached.ClearCache()
		clk.mu.Lock()
		clk.t = fixedNow
		clk.mu.Unlock()
		if _, err := cached.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
		clk.mu.Lock()
		clk.t = at
		clk.mu.Unlock()
		_, gotErr := cached.Verify(context.Background(), raw)
		if !errors.Is(gotErr, wantErr) || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("at %v: cached %v, fresh %v", at, gotErr, wantErr)
		}
	}
}

func TestCachedClaimsAreCallersOwn(t *testing.T) {
	s := newTestSigner(t, ES256)
	v := newTestVerifier(StaticKeys(s.VerificationKey()))
	raw := mustSign(t, s, validClaims())
	ctx := context.Background()
	first, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	first.Role = "admin"
	first.Audience[0] = "evil"
	for range 2 { // the second call is a hit
		again, err := v.Verify(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if again.Role != "member" || again.Audience[0] != testAudience {
			t.Fatalf("cache was changed through returned claims: %+v", again)
		}
		again.Audience[0] = "evil"
	}
}

func TestCacheBounded(t *testing.T) {
	s := newTestSigner(t, HS256)
	for _, size := range []int{1, 5, 2000} {
		v := newTestVerifier(StaticKeys(s.VerificationKey()), WithCacheSize(size))
		for i := range size + 50 {
			c := validClaims()
			c.ID = fmt.Sprint(i)
			if _, err := v.Verify(context.Background(), mustSign(t, s, c)); err != nil {
				t.Fatal(err)
			}
		}
		if n := v.cache.len(); n > size || n == 0 {
			t.Errorf("size %d: cache holds %d", size, n)
		}
	}
	v := newTestVerifier(StaticKeys(s.VerificationKey()), WithCacheSize(0))
	if _, err := v.Verify(context.Background(), mustSign(t, s, validClaims())); err != nil || v.cache != nil {
		t.Fatalf("cache size 0: err %v, cache %v", err, v.cache)
	}
}

func TestCacheEvictsExpiredFirst(t *testing.T) {
	s := newTestSigner(t, HS256)
	clk := newClock(fixedNow)
	v := newTestVerifier(StaticKeys(s.VerificationKey()), WithNow(clk.Now), WithCacheSize(2), WithLeeway(0))
	short := validClaims()
	short.ExpiresAt = fixedNow.Add(time.Minute)
	long := validClaims()
	long.ID = "long"
	shortRaw, longRaw := mustSign(t, s, short), mustSign(t, s, long)
	for _, raw := range []string{shortRaw, longRaw} {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)
	third := validClaims()
	third.ID = "third"
	if _, err := v.Verify(context.Background(), mustSign(t, s, third)); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.cache.get(longRaw); !ok {
		t.Fatal("live entry evicted while an expired one was there")
	}
}

func TestVerifyConcurrent(t *testing.T) {
	w := newTestWorld(t)
	v := w.verifier(WithCacheSize(3)) // small, so evictions race with hits
	var tokens []string
	for i, alg := range algs {
		for j := range 2 {
			c := validClaims()
			c.ID = fmt.Sprint(i, j)
			tokens = append(tokens, mustSign(t, w.signers[alg], c))
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				raw := tokens[(g+i)%len(tokens)]
				c, err := v.Verify(context.Background(), raw)
				if err != nil {
					t.Error(err)
					return
				}
				c.Audience[0] = "scribble"
				if i%10 == 0 {
					v.ClearCache()
				}
			}
		})
	}
	wg.Wait()
}

// changingKeys is a VersionedKeySource whose keys a test replaces, as a
// refetched JWKS replaces its set. It counts lookups, so a test can tell a
// cache hit (no lookup) from a verification (one lookup).
type changingKeys struct {
	mu      sync.Mutex
	keys    map[string]Key
	version atomic.Uint64
	lookups atomic.Int64
	// duringKey, when set, runs inside Key, between the Verifier reading
	// the version and getting the key.
	duringKey func()
}

func newChangingKeys(keys ...Key) *changingKeys {
	c := &changingKeys{}
	c.replace(keys...)
	return c
}

// replace swaps the whole set, keys first and version after, as
// VersionedKeySource requires.
func (c *changingKeys) replace(keys ...Key) {
	m := make(map[string]Key, len(keys))
	for _, k := range keys {
		m[k.ID] = k
	}
	c.mu.Lock()
	c.keys = m
	c.mu.Unlock()
	c.version.Add(1)
}

func (c *changingKeys) Key(_ context.Context, kid string) (Key, error) {
	c.lookups.Add(1)
	if c.duringKey != nil {
		c.duringKey()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[kid]; ok {
		return k, nil
	}
	return Key{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

func (c *changingKeys) Version() uint64 { return c.version.Load() }

var _ VersionedKeySource = (*changingKeys)(nil)

// countingKeys is a KeySource without versions that counts lookups.
type countingKeys struct {
	KeySource
	lookups atomic.Int64
}

func (c *countingKeys) Key(ctx context.Context, kid string) (Key, error) {
	c.lookups.Add(1)
	return c.KeySource.Key(ctx, kid)
}

// mustVerify verifies raw and fails unless it passes with exactly
// wantLookups key lookups made so far.
func mustVerify(tb testing.TB, v *Verifier, raw string, lookups *atomic.Int64, wantLookups int64) {
	tb.Helper()
	if _, err := v.Verify(context.Background(), raw); err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	if n := lookups.Load(); n != wantLookups {
		tb.Fatalf("%d key lookups, want %d", n, wantLookups)
	}
}

func TestCacheHitsUntilKeysVersionChanges(t *testing.T) {
	s := newTestSigner(t, ES256)
	keys := newChangingKeys(s.VerificationKey())
	v := newTestVerifier(keys)
	raw := mustSign(t, s, validClaims())

	mustVerify(t, v, raw, &keys.lookups, 1)
	mustVerify(t, v, raw, &keys.lookups, 1) // a hit: no lookup, no signature check

	// The source says its set changed (it may have lost this token's key):
	// the next use verifies afresh, and the ones after hit again.
	keys.replace(s.VerificationKey())
	mustVerify(t, v, raw, &keys.lookups, 2)
	mustVerify(t, v, raw, &keys.lookups, 2)
}

func TestCachedTokenOfWithdrawnKeyIsRefused(t *testing.T) {
	withdrawn, kept := newTestSigner(t, ES256), newTestSigner(t, EdDSA)
	keys := newChangingKeys(withdrawn.VerificationKey(), kept.VerificationKey())
	v := newTestVerifier(keys)
	gone, stays := mustSign(t, withdrawn, validClaims()), mustSign(t, kept, validClaims())
	ctx := context.Background()
	for range 2 {
		for _, raw := range []string{gone, stays} {
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := v.cache.len(); n != 2 {
		t.Fatalf("%d cached, want 2", n)
	}

	keys.replace(kept.VerificationKey())
	if _, err := v.Verify(ctx, gone); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("cached token of a withdrawn key: err = %v, want ErrUnknownKey", err)
	}
	if _, err := v.Verify(ctx, stays); err != nil {
		t.Fatalf("cached token of a kept key: %v", err)
	}
	if _, ok := v.cache.get(gone); ok {
		t.Fatal("token of a withdrawn key still cached")
	}
	// Refused for good, not only once.
	if _, err := v.Verify(ctx, gone); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("second use: err = %v, want ErrUnknownKey", err)
	}
}

func TestCachedTokenOfReplacedKeyIsRefused(t *testing.T) {
	// The same kid now names other key material: tokens of the old key
	// must fail their signature check, not hit.
	old := newTestSigner(t, ES256)
	other, err := NewSigner(ES256, old.KeyID(), mustGenerateKey(t, ES256))
	if err != nil {
		t.Fatal(err)
	}
	keys := newChangingKeys(old.VerificationKey())
	v := newTestVerifier(keys)
	raw := mustSign(t, old, validClaims())
	mustVerify(t, v, raw, &keys.lookups, 1)

	keys.replace(other.VerificationKey())
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrSignature) {
		t.Fatalf("err = %v, want ErrSignature", err)
	}
}

func TestCacheEntryKeepsVersionReadBeforeLookup(t *testing.T) {
	// A refresh that lands while a token is being verified must not let
	// the result be cached as if checked against the new set: the entry
	// keeps the version read before the lookup, so its next use checks
	// again.
	s := newTestSigner(t, ES256)
	keys := newChangingKeys(s.VerificationKey())
	v := newTestVerifier(keys)
	raw := mustSign(t, s, validClaims())

	var once sync.Once
	keys.duringKey = func() { once.Do(func() { keys.version.Add(1) }) }
	mustVerify(t, v, raw, &keys.lookups, 1)
	mustVerify(t, v, raw, &keys.lookups, 2)
	mustVerify(t, v, raw, &keys.lookups, 2)
}

func TestCacheWithoutVersionsNeverRechecks(t *testing.T) {
	s := newTestSigner(t, ES256)
	keys := &countingKeys{KeySource: StaticKeys(s.VerificationKey())}
	v := newTestVerifier(keys)
	if v.versioned != nil {
		t.Fatal("a KeySource without Version taken for a VersionedKeySource")
	}
	raw := mustSign(t, s, validClaims())
	for range 3 {
		mustVerify(t, v, raw, &keys.lookups, 1)
	}
}

func TestCacheEvictsOtherVersionsFirst(t *testing.T) {
	s := newTestSigner(t, ES256)
	sign := func(jti string) string {
		c := validClaims()
		c.ID = jti
		return mustSign(t, s, c)
	}
	old, live, next := sign("old"), sign("live"), sign("next")
	ctx := context.Background()
	// Eviction would otherwise pick at random, so one round could pass
	// by luck; twenty cannot.
	for range 20 {
		keys := newChangingKeys(s.VerificationKey())
		v := newTestVerifier(keys, WithCacheSize(2))
		if _, err := v.Verify(ctx, old); err != nil {
			t.Fatal(err)
		}
		keys.replace(s.VerificationKey())
		for _, raw := range []string{live, next} {
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := v.cache.get(live); !ok {
			t.Fatal("entry of the current version evicted while one of an older version was there")
		}
		if _, ok := v.cache.get(old); ok {
			t.Fatal("entry of an older version kept over a current one")
		}
	}
}

func TestVerifyConcurrentWithKeyChanges(t *testing.T) {
	// Run with -race: hits, misses and version changes interleave. A key
	// that is never withdrawn must verify throughout.
	stable, flapping := newTestSigner(t, ES256), newTestSigner(t, EdDSA)
	keys := newChangingKeys(stable.VerificationKey(), flapping.VerificationKey())
	v := newTestVerifier(keys, WithCacheSize(8))
	var stableTokens, flappingTokens []string
	for i := range 4 {
		c := validClaims()
		c.ID = fmt.Sprint("jti-", i)
		stableTokens = append(stableTokens, mustSign(t, stable, c))
		flappingTokens = append(flappingTokens, mustSign(t, flapping, c))
	}
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				keys.replace(stable.VerificationKey())
			} else {
				keys.replace(stable.VerificationKey(), flapping.VerificationKey())
			}
			runtime.Gosched() // let the workers see each set
		}
	})
	var workers sync.WaitGroup
	for g := range 4 {
		workers.Go(func() {
			for i := range 200 {
				if _, err := v.Verify(ctx, stableTokens[(g+i)%len(stableTokens)]); err != nil {
					t.Errorf("token of a key never withdrawn: %v", err)
					return
				}
				if _, err := v.Verify(ctx, flappingTokens[(g+i)%len(flappingTokens)]); err != nil && !errors.Is(err, ErrUnknownKey) {
					t.Errorf("token of a key coming and going: %v", err)
					return
				}
			}
		})
	}
	workers.Wait()
	close(stop)
	wg.Wait()

	// Once the flapping key is gone for good, none of its tokens passes,
	// however the interleaving left the cache.
	keys.replace(stable.VerificationKey())
	for _, raw := range flappingTokens {
		if _, err := v.Verify(ctx, raw); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("after withdrawal: err = %v, want ErrUnknownKey", err)
		}
	}
}

func TestKeyEqual(t *testing.T) {
	es, ed, rs, hs := newTestSigner(t, ES256).VerificationKey(), newTestSigner(t, EdDSA).VerificationKey(),
		newTestSigner(t, RS256).VerificationKey(), newTestSigner(t, HS256).VerificationKey()
	otherES := Key{ID: es.ID, Alg: ES256, Public: mustGenerateKey(t, ES256).Public()}
	renamed := es
	renamed.ID = "other"
	relabelled := es
	relabelled.Alg = EdDSA
	otherSecret := hs
	otherSecret.Secret = []byte(strings.Repeat("z", len(hs.Secret)))
	longerSecret := hs
	longerSecret.Secret = append([]byte(nil), hs.Secret...)
	longerSecret.Secret = append(longerSecret.Secret, 'x')
	noPublic := es
	noPublic.Public = nil
	secret := Key{ID: "k", Alg: HS256, Secret: hs.Secret}
	secretAndPublic := secret
	secretAndPublic.Public = es.Public
	tests := []struct {
		name string
		a, b Key
		want bool
	}{
		{"same ES256 key", es, es, true},
		{"same EdDSA key", ed, ed, true},
		{"same RS256 key", rs, rs, true},
		{"same secret", hs, hs, true},
		{"other material under the same kid", es, otherES, false},
		{"same material under another kid", es, renamed, false},
		{"same material for another algorithm", es, relabelled, false},
		{"other key type", es, ed, false},
		{"other secret", hs, otherSecret, false},
		{"longer secret", hs, longerSecret, false},
		{"public key against none", es, noPublic, false},
		{"a secret against a secret with a public key", secret, secretAndPublic, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Equal(tc.b); got != tc.want {
				t.Errorf("a.Equal(b) = %v, want %v", got, tc.want)
			}
			if got := tc.b.Equal(tc.a); got != tc.want {
				t.Errorf("b.Equal(a) = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKnownHeadersMakeRoomForNewKeys(t *testing.T) {
	// Each rotation brings a header segment for the new kid. Once the map
	// is full of retired keys' headers, a new key's must still be learnt,
	// or its tokens would take the slow path for the rest of the process.
	priv := mustCachedKey(t, ES256)
	var keys []Key
	var signers []*Signer
	for i := range maxKnownHeaders + 1 {
		s, err := NewSigner(ES256, fmt.Sprint("kid-", i), priv)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
		keys = append(keys, s.VerificationKey())
	}
	v := newTestVerifier(StaticKeys(keys...), WithCacheSize(0))
	for _, s := range signers {
		raw := mustSign(t, s, validClaims())
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatal(err)
		}
		segment, _, _ := strings.Cut(raw, ".")
		if _, ok := v.headers.get(segment); !ok {
			t.Fatalf("header of %s not remembered", s.KeyID())
		}
	}
	if n := len(v.headers.m); n > maxKnownHeaders {
		t.Fatalf("%d known headers, bound is %d", n, maxKnownHeaders)
	}
}
