// Package jwks fetches the verification keys an auth server publishes: a
// [Remote] key source that reads a JWK Set URL (RFC 7517) and caches the
// keys, and [Discover], which finds that URL in the OpenID discovery
// document.
//
// It is the part of token that speaks HTTP, kept in its own package as
// golang-jwt keeps request extraction in its request package: code that
// signs or verifies with keys it already holds (the Latchkey domain, an auth
// server checking its own tokens) imports token alone and never links
// net/http. It depends on the standard library and token only.
//
// A [Remote] answers with token's sentinels, so callers branch the same way
// whatever the key source: an unknown kid wraps [token.ErrUnknownKey] (the
// token is refused), and a key server that has never answered wraps
// [token.ErrKeysUnavailable] (the token could not be judged; answer 5xx).
//
// Only JWK Sets and the discovery that leads to them belong here; a client
// of another document the auth server publishes, such as a revocation feed,
// belongs in a sibling package named for what it provides.
package jwks
