package token

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// verdict names the most specific sentinel err matches, so that two
// verifications can be compared.
func verdict(err error) string {
	if err == nil {
		return "ok"
	}
	for _, s := range []struct {
		name string
		err  error
	}{
		{"too large", ErrTooLarge}, {"malformed", ErrMalformed}, {"unknown key", ErrUnknownKey},
		{"algorithm", ErrAlgorithm}, {"signature", ErrSignature}, {"expired", ErrExpired},
		{"not yet valid", ErrNotYetValid}, {"issuer", ErrIssuer}, {"audience", ErrAudience},
		{"missing claim", ErrMissingClaim}, {"keys unavailable", ErrKeysUnavailable},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other: " + err.Error()
}

// agreeingVerifiers returns a verifier that knows the headers of every
// fixture key, and a function that verifies with golang-jwt's full parse
// only (a verifier that forgets every header before each call).
func agreeingVerifiers(tb testing.TB) (known *Verifier, full func(string) (*Claims, error), signers map[string]*Signer) {
	known, signers = fixtureVerifier(tb)
	for _, alg := range algs {
		if _, err := known.Verify(context.Background(), mustSign(tb, signers[alg], validClaims())); err != nil {
			tb.Fatal(err)
		}
	}
	if n := len(known.headers.m); n != len(algs) {
		tb.Fatalf("%d known headers after one token per key, want %d", n, len(algs))
	}
	cold, _ := fixtureVerifier(tb)
	full = func(raw string) (*Claims, error) {
		cold.headers = &knownHeaders{m: make(map[string]knownHeader)}
		cold.ClearCache()
		return cold.Verify(context.Background(), raw)
	}
	return known, full, signers
}

func checkAgree(t *testing.T, known *Verifier, full func(string) (*Claims, error), raw string) {
	t.Helper()
	known.ClearCache() // judge the token, not the cache
	kc, kerr := known.Verify(context.Background(), raw)
	fc, ferr := full(raw)
	if verdict(kerr) != verdict(ferr) || !reflect.DeepEqual(kc, fc) {
		t.Fatalf("known header and full parse disagree on %q:\n  known: %v, %v\n  full:  %v, %v", raw, kc, kerr, fc, ferr)
	}
}

// TestKnownHeaderAgreesWithFullParse runs every attack and every way a
// token can fail through both paths: the shortcut for a known header must
// give the very same verdict and claims as golang-jwt's parse.
func TestKnownHeaderAgreesWithFullParse(t *testing.T) {
	known, full, signers := agreeingVerifiers(t)
	var tokens []string
	tokens = append(tokens, verifySeeds(t, signers)...)
	for _, alg := range algs {
		s := signers[alg]
		good := mustSign(t, s, validClaims())
		h, rest, _ := strings.Cut(good, ".")
		payload, sig, _ := strings.Cut(rest, ".")
		other := mustSign(t, signers[otherAlg(alg)], validClaims())
		oh, _, _ := strings.Cut(other, ".")
		tokens = append(tokens,
			good,
			h+"."+payload+"."+sig+".",                        // four segments
			h+"."+payload+"."+sig+"=",                        // padded signature
			h+"."+payload+"=."+sig,                           // padded payload
			h+"."+payload+"."+sig[:len(sig)-2],               // truncated signature
			h+".!!!."+sig,                                    // payload not base64
			h+"."+b64.EncodeToString([]byte(`[]`))+"."+sig,   // claims not an object
			h+"."+b64.EncodeToString([]byte(`null`))+"."+sig, // null claims
			h+"."+payload+".",                                // no signature
			h+"."+payload,                                    // two segments
			oh+"."+payload+"."+sig,                           // another key's header on this payload
			h+"."+payload+"."+strings.Repeat("A", len(sig)),  // zero signature
		)
	}
	for _, raw := range tokens {
		checkAgree(t, known, full, raw)
	}
}

// otherAlg is a fixture algorithm other than alg.
func otherAlg(alg string) string {
	for _, a := range algs {
		if a != alg {
			return a
		}
	}
	return alg
}

// TestKnownHeaderFollowsKeySource: a known header does not keep its key;
// once the key source no longer has the kid, its tokens are refused.
func TestKnownHeaderFollowsKeySource(t *testing.T) {
	signers := fixtureSigners(t)
	s := signers[ES256]
	keys := &switchableKeys{key: s.VerificationKey()}
	v := newTestVerifier(keys, WithCacheSize(0))
	raw := mustSign(t, s, validClaims())
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	keys.key = Key{}
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("after the key was withdrawn: %v, want ErrUnknownKey", err)
	}
}

type switchableKeys struct{ key Key }

func (k *switchableKeys) Key(_ context.Context, kid string) (Key, error) {
	if k.key.ID == "" || kid != k.key.ID {
		return Key{}, ErrUnknownKey
	}
	return k.key, nil
}

// FuzzKnownHeader mutates tokens, most of them behind a known header, and
// checks that the shortcut and golang-jwt's full parse agree on each.
func FuzzKnownHeader(f *testing.F) {
	known, full, signers := agreeingVerifiers(f)
	for _, s := range verifySeeds(f, signers) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkAgree(t, known, full, raw)
	})
}
