package token

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of a Verifier.
const (
	DefaultLeeway       = 30 * time.Second
	DefaultCacheSize    = 10000
	DefaultMaxTokenSize = 8 << 10
)

// maxKidLen bounds the kid handed to a KeySource; real kids (thumbprints,
// UUIDs) are far shorter, and a KeySource need not cope with megabytes.
const maxKidLen = 256

type verifierOptions struct {
	issuer       string
	audience     string
	leeway       time.Duration
	now          func() time.Time
	cacheSize    int
	maxTokenSize int
	revoker      Revoker
}

// Option configures a Verifier.
type Option func(*verifierOptions)

// WithIssuer makes the Verifier require "iss" to equal iss. Set it in every
// real deployment.
func WithIssuer(iss string) Option { return func(o *verifierOptions) { o.issuer = iss } }

// WithAudience makes the Verifier require "aud" to contain aud. Set it in
// every real deployment, so tokens meant for another service are refused.
func WithAudience(aud string) Option { return func(o *verifierOptions) { o.audience = aud } }

// WithLeeway sets the clock skew tolerated on "exp" and "nbf" (default 30 s;
// negative values count as 0).
func WithLeeway(d time.Duration) Option { return func(o *verifierOptions) { o.leeway = max(d, 0) } }

// WithNow sets the clock, for tests (default time.Now).
func WithNow(now func() time.Time) Option { return func(o *verifierOptions) { o.now = now } }

// WithCacheSize bounds the cache of verified tokens (default 10000 entries;
// 0 disables it).
func WithCacheSize(n int) Option { return func(o *verifierOptions) { o.cacheSize = max(n, 0) } }

// WithMaxTokenSize sets the longest token accepted, in bytes (default 8192;
// values below 1 keep the default, as running without a cap is never wanted).
func WithMaxTokenSize(n int) Option {
	return func(o *verifierOptions) {
		if n > 0 {
			o.maxTokenSize = n
		}
	}
}

// WithRevocations makes the Verifier ask r about every token that passed
// the signature and claim checks, cache hits included, and refuse the ones
// it names, such as those a revocation feed lists (see
// [github.com/latchkey-dev/latchkey/token/revocation]). r is asked on the
// request path, so it must answer from memory.
func WithRevocations(r Revoker) Option { return func(o *verifierOptions) { o.revoker = r } }

// Revoker says whether a token that is otherwise valid has been revoked
// since it was issued.
//
// Revoked returns nil for a token it does not refuse; an error matching
// [ErrRevoked] (or any [ErrInvalid]) for one it refuses; and any other
// error when it cannot tell, which the Verifier reports as
// [ErrRevocationsUnavailable]. It runs on every verification, so it must
// be cheap and must not block: no I/O, and no lock held across I/O. c must
// not be changed or kept.
type Revoker interface {
	Revoked(c *Claims) error
}

// VersionedRevoker is a Revoker whose answers change only when its Version
// does, such as a revocation list replaced whole on each fetch. A
// [Verifier] over one remembers, with each cached token, the version under
// which it last passed, so that a cache hit costs a version comparison
// instead of a lookup until the list changes.
//
// Version must change whenever an answer Revoked has given may change (a
// new list, failing closed, recovering), and never return to an earlier
// value. A Revoked call that starts after Version has returned v answers
// from v's state or a later one: publish the state before the version that
// names it. Like Revoked, it must be cheap and must not block.
type VersionedRevoker interface {
	Revoker
	Version() uint64
}

// Verifier checks access tokens against a KeySource. It is safe for
// concurrent use.
//
// Positive results are cached by exact token string until the token expires.
// Only tokens that passed every check enter the cache, so an attacker cannot
// fill it, and a cached token is still refused once expired. When the
// KeySource is a [VersionedKeySource] (a remote JWKS is), a cached token is
// verified again, signature and all, on its first use after the source's
// version changes, so a key withdrawn from the source refuses cached tokens
// too. Over a KeySource without versions, withdrawing a key does not evict
// tokens already verified with it; call [Verifier.ClearCache] then.
//
// With [WithRevocations], the Revoker is asked after every other check on
// every path, so a cached token whose session is revoked afterwards is
// refused on its next use like a fresh one.
type Verifier struct {
	keys      KeySource
	versioned VersionedKeySource // keys, when it has versions; nil otherwise
	opts      verifierOptions
	parser    *jwt.Parser
	cache     *cache // nil when disabled
	headers   *knownHeaders
	revoker   Revoker          // nil without WithRevocations
	vrevoker  VersionedRevoker // revoker, when it has versions; nil otherwise
}

// validMethods lists what golang-jwt may even look at. The pin to the key is
// enforced separately in keyfunc; this list is the second lock that keeps
// "none" and unsupported methods away from key lookup.
var validMethods = []string{ES256, EdDSA, RS256, HS256}

// NewVerifier returns a Verifier that finds keys in keys.
func NewVerifier(keys KeySource, opts ...Option) *Verifier {
	o := verifierOptions{
		leeway:       DefaultLeeway,
		now:          time.Now,
		cacheSize:    DefaultCacheSize,
		maxTokenSize: DefaultMaxTokenSize,
	}
	for _, opt := range opts {
		opt(&o)
	}
	v := &Verifier{
		keys: keys,
		opts: o,
		// Claims are checked by v.check, not golang-jwt's validator, so that
		// a cache hit and a fresh verification apply the very same rule with
		// one reading of the clock.
		parser: jwt.NewParser(
			jwt.WithValidMethods(validMethods),
			jwt.WithStrictDecoding(),
			jwt.WithoutClaimsValidation(),
		),
	}
	if o.cacheSize > 0 {
		v.cache = newCache(o.cacheSize)
	}
	v.versioned, _ = keys.(VersionedKeySource)
	v.revoker = o.revoker
	v.vrevoker, _ = o.revoker.(VersionedRevoker)
	v.headers = &knownHeaders{m: make(map[string]knownHeader)}
	return v
}

// Verify checks raw and returns its claims. Every error for a bad token
// matches [ErrInvalid] and one of the more specific sentinels; an error that
// does not match ErrInvalid (such as [ErrKeysUnavailable]) means the token
// could not be judged.
//
// The returned Claims are the caller's own copy.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	// The size cap comes first so that nothing below ever works on an
	// attacker-sized input.
	if len(raw) > v.opts.maxTokenSize {
		return nil, ErrTooLarge
	}
	if raw == "" {
		return nil, ErrMalformed
	}
	now := v.opts.now()
	var version uint64
	if v.cache != nil {
		// Read before the key is looked up: if the keys change in between,
		// the entry carries the older version and is verified again on its
		// next use, which costs a signature check and never a wrong answer.
		version = v.keysVersion()
		if e, ok := v.cache.get(raw); ok {
			if e.version == version {
				if err := e.check(now); err != nil {
					v.cache.remove(raw)
					return nil, err
				}
				// A revoked token stays cached: it can never pass again
				// while listed, and answering it from here costs an
				// attacker who replays it a lookup, not a signature check.
				if err := v.revokedCached(e); err != nil {
					return nil, err
				}
				return e.claims.clone(), nil
			}
			// Verified under keys that have since lost or changed one,
			// perhaps this token's: judge it afresh, as a new token.
			v.cache.remove(raw)
		}
	}

	wire, err := v.parseKnownHeader(ctx, raw)
	if errors.Is(err, errUnknownHeader) {
		wire, err = v.parse(ctx, raw)
	}
	if err != nil {
		return nil, err
	}

	c := wire.claims()
	if err := v.check(c, now); err != nil {
		return nil, err
	}
	if v.revoker != nil {
		// Read before asking, as the key version is read before the key
		// lookup: an entry marked with an older version is asked again,
		// never passed under a list it was not checked against.
		passed := v.revokerVersion()
		if err := v.revoked(c); err != nil {
			return nil, err
		}
		if v.cache != nil {
			e := cacheEntry{claims: c.clone(), window: v.window(c), version: version, passed: new(atomic.Uint64)}
			e.passed.Store(passed)
			v.cache.put(raw, e, now)
		}
		return c, nil
	}
	if v.cache != nil {
		v.cache.put(raw, cacheEntry{claims: c.clone(), window: v.window(c), version: version}, now)
	}
	return c, nil
}

// revoked asks the Revoker about c, mapping an answer that is neither a
// refusal nor "unavailable" to unavailable: a Revoker that cannot tell
// must not make the client sign in again.
func (v *Verifier) revoked(c *Claims) error {
	err := v.revoker.Revoked(c)
	switch {
	case err == nil, errors.Is(err, ErrInvalid), errors.Is(err, ErrRevocationsUnavailable):
		return err
	default:
		return fmt.Errorf("%w: %w", ErrRevocationsUnavailable, err)
	}
}

// revokedCached is revoked for a cache hit. Over a VersionedRevoker, a hit
// whose entry passed under the current version is not asked again: the
// answer cannot have changed, and the hit stays a map lookup and a clone.
func (v *Verifier) revokedCached(e cacheEntry) error {
	if v.revoker == nil {
		return nil
	}
	if v.vrevoker == nil || e.passed == nil {
		return v.revoked(e.claims)
	}
	current := v.revokerVersion()
	if e.passed.Load() == current {
		return nil
	}
	if err := v.revoked(e.claims); err != nil {
		return err
	}
	// Racing hits may store an older version over a newer one; that only
	// makes the next hit ask again.
	e.passed.Store(current)
	return nil
}

// revokerVersion is the value an entry's passed holds once it has passed
// under the Revoker's current version. It is the version plus one, so that
// the zero value never means "passed"; a Revoker without versions has none.
func (v *Verifier) revokerVersion() uint64 {
	if v.vrevoker == nil {
		return 0
	}
	return v.vrevoker.Version() + 1
}

// parse verifies raw's signature with golang-jwt's parser and returns its
// claims, unchecked. A header seen here in a token whose signature verified
// is remembered for parseKnownHeader.
func (v *Verifier) parse(ctx context.Context, raw string) (*wireClaims, error) {
	var (
		wire       wireClaims
		keyfuncRan bool
		keyErr     error
		header     knownHeader
	)
	_, err := v.parser.ParseWithClaims(raw, &wire, func(t *jwt.Token) (any, error) {
		keyfuncRan = true
		kid, err := checkHeader(t)
		if err != nil {
			keyErr = err
			return nil, err
		}
		header = knownHeader{method: t.Method, kid: kid}
		material, err := v.keyMaterial(ctx, t.Method, kid)
		keyErr = err
		return material, err
	})
	switch {
	case keyErr != nil:
		return nil, keyErr
	case err == nil:
		h, _, _ := strings.Cut(raw, ".")
		v.headers.put(h, header)
		return &wire, nil
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// An "alg" that is missing or unknown to golang-jwt ("None", "NONE").
		return nil, ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !keyfuncRan:
		// An "alg" golang-jwt knows but we never allow ("none", "HS512").
		return nil, ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, ErrSignature
	default:
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
}

// checkHeader applies the header rules golang-jwt leaves to us and returns
// the kid.
func checkHeader(t *jwt.Token) (string, error) {
	if typ, ok := t.Header["typ"]; ok {
		s, _ := typ.(string)
		if !strings.EqualFold(s, "JWT") && !strings.EqualFold(s, "application/jwt") {
			return "", fmt.Errorf("%w: typ %q", ErrMalformed, s)
		}
	}
	if _, ok := t.Header["crit"]; ok {
		return "", fmt.Errorf("%w: crit header not supported", ErrMalformed)
	}
	var kid string
	if h, ok := t.Header["kid"]; ok {
		s, ok := h.(string)
		if !ok {
			return "", fmt.Errorf("%w: kid is not a string", ErrMalformed)
		}
		kid = s
	}
	return kid, nil
}

// keyMaterial returns the key material for kid, pinned to the key's own
// algorithm: the token's method must be the key's.
func (v *Verifier) keyMaterial(ctx context.Context, method jwt.SigningMethod, kid string) (any, error) {
	if len(kid) > maxKidLen {
		return nil, ErrUnknownKey
	}
	if v.keys == nil {
		return nil, fmt.Errorf("%w: no key source", ErrKeysUnavailable)
	}
	if set, ok := v.keys.(KeySetSource); ok {
		keys, err := set.Keys(ctx, kid)
		if err != nil {
			return nil, keyErr(err)
		}
		if len(keys) > 1 {
			// golang-jwt tries each; every one is pinned like a single key.
			ks := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, 0, len(keys))}
			for _, k := range keys {
				m, err := pinned(method, k)
				if err != nil {
					return nil, err
				}
				ks.Keys = append(ks.Keys, m)
			}
			return ks, nil
		}
		if len(keys) == 1 {
			return pinned(method, keys[0])
		}
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	}
	key, err := v.keys.Key(ctx, kid)
	if err != nil {
		return nil, keyErr(err)
	}
	return pinned(method, key)
}

// keyErr is a key source's error as Verify reports it: a refusal stays
// one, anything else means the token could not be judged.
func keyErr(err error) error {
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrKeysUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
}

// pinned returns key's material for a token signed with method. The pin:
// the token's alg must be the key's. The key is never chosen or
// interpreted according to the token.
func pinned(method jwt.SigningMethod, key Key) (any, error) {
	if method == nil || method.Alg() != key.Alg {
		return nil, ErrAlgorithm
	}
	material, err := key.material()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownKey, err)
	}
	return material, nil
}

// check applies the claim rules to freshly verified claims.
func (v *Verifier) check(c *Claims, now time.Time) error {
	if c.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: exp", ErrMissingClaim)
	}
	if c.Subject == "" {
		return fmt.Errorf("%w: sub", ErrMissingClaim)
	}
	if err := v.window(c).check(now); err != nil {
		return err
	}
	if v.opts.issuer != "" && c.Issuer != v.opts.issuer {
		return ErrIssuer
	}
	if v.opts.audience != "" && !slices.Contains(c.Audience, v.opts.audience) {
		return ErrAudience
	}
	return nil
}

// window is when a token may be used, leeway included. It is the part of
// check that changes while a token sits in the cache, so cache hits check it
// too, from the same computation.
type window struct {
	from  time.Time // nbf minus leeway; zero when there is no nbf
	until time.Time // exp plus leeway, excluded
}

func (v *Verifier) window(c *Claims) window {
	w := window{until: c.ExpiresAt.Add(v.opts.leeway)}
	if !c.NotBefore.IsZero() {
		w.from = c.NotBefore.Add(-v.opts.leeway)
	}
	return w
}

func (w window) check(now time.Time) error {
	if !now.Before(w.until) {
		return ErrExpired
	}
	if !w.from.IsZero() && now.Before(w.from) {
		return ErrNotYetValid
	}
	return nil
}

// keysVersion is the key source's version, or 0 for a source without
// versions, whose cached tokens are never re-verified.
func (v *Verifier) keysVersion() uint64 {
	if v.versioned == nil {
		return 0
	}
	return v.versioned.Version()
}

// ClearCache forgets every verified token, so that withdrawing a key for
// cause from a KeySource without versions takes effect at once rather than
// when its tokens expire. A [VersionedKeySource] needs no call.
func (v *Verifier) ClearCache() {
	if v.cache != nil {
		v.cache.clear()
	}
}
