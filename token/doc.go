// Package token issues and verifies Latchkey access tokens: JWTs (RFC 7519)
// signed with ES256, EdDSA, RS256 or, in shared-secret mode, HS256.
//
// It is meant to be imported by any resource server, so it depends only on
// the standard library and github.com/golang-jwt/jwt/v5, never on a database
// or on the rest of Latchkey. It does not link net/http either, so the
// Latchkey domain can use it and stay free of HTTP: the key source that
// fetches an auth server's JWKS is in
// [github.com/latchkey-dev/latchkey/token/jwks].
//
// The verification rules are the wire contract's:
//
//   - The algorithm is pinned to the key. A token's "alg" header only has to
//     agree with the key found by its "kid"; it never chooses how the
//     signature is checked, so "none" (in any spelling) and the HS256-with-a-
//     public-key confusion cannot succeed.
//   - "exp" and "sub" are required; "nbf" is checked when present; a clock
//     leeway (30 s by default) applies to both.
//   - "iss" and "aud" are checked when configured with [WithIssuer] and
//     [WithAudience]. Every real verifier should configure both: without them
//     a token minted by another service that shares the keys would be
//     accepted.
//   - Tokens over 8 KiB are rejected before any decoding.
//   - The "typ" header must be absent, "JWT" or "application/jwt" (any
//     case), so a differently typed JWT from the same issuer (an ID token, a
//     logout token) is not taken for an access token. A "crit" header is
//     rejected because no extension is understood.
//
// A [Verifier] caches positive results by exact token string, so a busy
// endpoint pays for the signature check once per token rather than once per
// request; time checks are still made on every call. Over a key source whose
// keys change, a [VersionedKeySource] such as a remote JWKS, each hit also
// checks the source's version, so a token whose key has been withdrawn is
// refused even when it was verified before the withdrawal.
package token
