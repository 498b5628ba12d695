package token

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (with errors.Is) by every error Verify returns for a
// token that must be refused, so a caller that only needs "401 or not" checks
// this one. Errors that do not match it (see [ErrKeysUnavailable]) mean the
// token could not be judged at all.
var ErrInvalid = errors.New("invalid token")

var (
	// ErrMalformed is returned when the token is not three base64url
	// segments of JSON with the expected types, or its header has an
	// unsupported "typ" or a "crit".
	ErrMalformed = fmt.Errorf("%w: malformed", ErrInvalid)

	// ErrTooLarge is returned, before any decoding, for a token longer
	// than the verifier's maximum (8 KiB by default).
	ErrTooLarge = fmt.Errorf("%w: too large", ErrInvalid)

	// ErrUnknownKey is returned when no key has the token's "kid". A
	// [KeySource] returns it (wrapped) for an unknown kid.
	ErrUnknownKey = fmt.Errorf("%w: unknown key", ErrInvalid)

	// ErrAlgorithm is returned when the token's "alg" is missing, "none" in
	// any spelling, unsupported, or not the algorithm pinned to its key.
	ErrAlgorithm = fmt.Errorf("%w: algorithm not allowed", ErrInvalid)

	// ErrSignature is returned when the signature does not verify with the
	// token's key.
	ErrSignature = fmt.Errorf("%w: bad signature", ErrInvalid)

	// ErrExpired is returned when "exp" plus the leeway is not after now.
	ErrExpired = fmt.Errorf("%w: expired", ErrInvalid)

	// ErrNotYetValid is returned when "nbf" is later than now plus the
	// leeway.
	ErrNotYetValid = fmt.Errorf("%w: not yet valid", ErrInvalid)

	// ErrIssuer is returned when an issuer is configured and "iss" differs.
	ErrIssuer = fmt.Errorf("%w: wrong issuer", ErrInvalid)

	// ErrAudience is returned when an audience is configured and "aud" does
	// not contain it.
	ErrAudience = fmt.Errorf("%w: wrong audience", ErrInvalid)

	// ErrMissingClaim is returned when "exp" or "sub" is absent.
	ErrMissingClaim = fmt.Errorf("%w: missing claim", ErrInvalid)

	// ErrRevoked is returned when the Verifier's [Revoker] refuses a token
	// that is otherwise valid: its session was ended, or its user's
	// earlier tokens were revoked (a role change, a disable, a sign-out
	// everywhere). It matches ErrInvalid, so the holder is told to sign in
	// again or refresh, as for any token that no longer works.
	ErrRevoked = fmt.Errorf("%w: revoked", ErrInvalid)
)

// ErrRevocationsUnavailable is returned when the Verifier's [Revoker]
// cannot say whether a token was revoked: a revocation feed that has never
// been fetched, or one older than its follower accepts when it is set to
// fail closed. Like [ErrKeysUnavailable] it does not match [ErrInvalid]:
// the token may be fine, and a server should answer 5xx rather than send
// the client to sign in again.
var ErrRevocationsUnavailable = errors.New("token: revocation list unavailable")

// ErrKeysUnavailable is returned when the key source could not be asked, for
// example when a remote JWKS has never been fetched successfully. It does not
// match [ErrInvalid]: the token may be fine, and a server should answer 5xx
// rather than tell the client to sign in again.
var ErrKeysUnavailable = errors.New("token: verification keys unavailable")

// ErrWeakSecret is returned by [NewHMACSigner] for a shared secret shorter
// than 32 bytes, or with fewer than 10 distinct byte values, which is a
// placeholder repeated to length ("changeme" x 4) rather than a random
// secret. Anyone who guesses the secret can mint tokens for any user and
// role, and a single token is enough to test guesses offline, so a weak
// secret is refused when the signer is built, before it can sign anything.
// The error never contains the secret.
var ErrWeakSecret = errors.New("token: weak shared secret")
