package token_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// keySet is a KeySetSource with fixed keys for every kid.
type keySet []token.Key

func (s keySet) Key(context.Context, string) (token.Key, error) { return s[0], nil }
func (s keySet) Keys(context.Context, string) ([]token.Key, error) {
	return s, nil
}

// TestKeySetSource: a token verifies if any key of the set verifies it,
// each key pinned to its own algorithm, and no other token does.
func TestKeySetSource(t *testing.T) {
	sign := func(secret string) string {
		s, err := token.NewHMACSigner([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		tok, err := s.Sign(&token.Claims{Subject: "u1", ExpiresAt: now.Add(time.Minute), IssuedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	key := func(secret string) token.Key {
		s, _ := token.NewHMACSigner([]byte(secret))
		return s.VerificationKey()
	}
	current, previous, other := "current-secret-0123456789abcdefghij", "previous-secret-0123456789abcdefgh", "another-secret-0123456789abcdefghij"
	v := token.NewVerifier(keySet{key(current), key(previous)})
	for _, secret := range []string{current, previous} {
		if _, err := v.Verify(t.Context(), sign(secret)); err != nil {
			t.Errorf("a token of one of the set's secrets: %v", err)
		}
	}
	if _, err := v.Verify(t.Context(), sign(other)); !errors.Is(err, token.ErrSignature) {
		t.Errorf("a token of another secret: %v, want ErrSignature", err)
	}

	// An HS256 token is not checked against a set that holds an ES256 key
	// beside a secret: every key of the set is pinned.
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		t.Fatal(err)
	}
	mixed := token.NewVerifier(keySet{key(current), {ID: "", Alg: token.ES256, Public: priv.Public()}})
	if _, err := mixed.Verify(t.Context(), sign(current)); !errors.Is(err, token.ErrAlgorithm) {
		t.Errorf("a set that mixes algorithms: %v, want ErrAlgorithm", err)
	}
}
