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
// [StaticKeys] serves keys already in hand. A cached remote JWKS, refreshed
// on an interval and refetched (rate-limited) on an unknown kid, is in
// [github.com/latchkey-dev/latchkey/token/jwks], so that this package, and
// everything that only signs or verifies with its own keys, never links
// net/http.
type KeySource interface {
	Key(ctx context.Context, kid string) (Key, error)
}

// VersionedKeySource is a KeySource whose keys change while it is in use,
// such as a remote JWKS that is refetched. A [Verifier] over one records the
// version with every token it caches and checks it on every cache hit, so a
// key withdrawn from the source stops verifying tokens cached under it too,
// not only new ones.
//
// Version names the set of keys Key currently answers from. It must change
// whenever a key Key has returned may no longer be returned for its kid
// (removed, or replaced by other key material), and may stay the same when
// keys are only added, so that publishing a next key costs cached tokens
// nothing. A value is never used again for a different set. A Key call that
// starts after Version has returned v answers from v's set or a later one:
// publish the keys before the version that names them.
//
// Version runs on every cache hit, so it must be cheap and must not block:
// no I/O, and no lock that is held across I/O. A source that refreshes on a
// schedule may use the call to notice that a refresh is due, as long as the
// refresh runs elsewhere.
type VersionedKeySource interface {
	KeySource
	Version() uint64
}

// KeySetSource is a KeySource that can hold several keys for one kid. In
// shared-secret mode tokens carry no kid, and while a secret changes the
// current and the previous one must both verify: Keys returns both, and
// a Verifier over a KeySetSource accepts a token that any of them
// verifies, each pinned to its own algorithm. Key returns the first.
type KeySetSource interface {
	KeySource
	Keys(ctx context.Context, kid string) ([]Key, error)
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
