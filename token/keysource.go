package token

import (
	"context"
	"fmt"
)

// KeySource finds the verification key for a kid ("" in shared-secret mode).
//
// Key returns an error wrapping [ErrUnknownKey] when no key has that kid.
// Lookup is by exact match only: the kid is attacker-controlled and must
// never be used as a path, query or pattern. Any other error means the source
// could not answer; the Verifier reports it as [ErrKeysUnavailable].
//
// [StaticKeys] serves keys already in hand. A cached remote JWKS, with
// rate-limited refetch on an unknown kid, is in
// [github.com/latchkey-dev/latchkey/token/jwks], so that this package, and
// everything that only signs or verifies with its own keys, never links
// net/http.
type KeySource interface {
	Key(ctx context.Context, kid string) (Key, error)
}

type staticKeys map[string]Key

// StaticKeys returns a KeySource over a fixed set of keys, such as an auth
// server's own current and previous keys, or the one shared secret. When two
// keys share an ID the last one wins.
func StaticKeys(keys ...Key) KeySource {
	m := make(staticKeys, len(keys))
	for _, k := range keys {
		m[k.ID] = k
	}
	return m
}

func (m staticKeys) Key(_ context.Context, kid string) (Key, error) {
	if k, ok := m[kid]; ok {
		return k, nil
	}
	return Key{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}
