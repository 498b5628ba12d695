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
// # Refresh policy
//
// The wire contract asks verifiers to refetch JWKS on an unknown kid
// (rate-limited) and on a regular interval, with each refetch replacing the
// whole key set, so that a key withdrawn for cause stops verifying from a
// verifier's next fetch and a newly published next key is held before
// anything is signed with it. A [Remote] does this as follows:
//
//   - The set is fetched again [Config.MaxAge] after each fetch (1 min by
//     default; a shorter Cache-Control max-age from the server shortens it,
//     to no less than 5 s). A timer marks the set due, and the next lookup
//     starts the fetch in the background; lookups, including the
//     [token.Verifier]'s cache hits, keep answering from the set in hand,
//     so the network is never on the request path while keys are held.
//   - An unknown kid waits for a refetch, at most one per
//     [Config.MinRefetch] (30 s by default), whatever the interval.
//   - A fetched set replaces the old one whole; nothing is merged, so a
//     key missing from the document is gone (the lesson of
//     GHSA-675f-rq2r-jw82, where merged sets kept withdrawn keys alive).
//     When a key was removed or replaced, [Remote.Version] changes, and a
//     Verifier re-checks each cached token on its next use.
//   - A failed fetch never empties or changes the set. It is retried after
//     1 s, doubling up to the interval.
//
// A Remote that nobody asks stops fetching once its timer has fired: the
// first lookup after a quiet spell starts the fetch and is answered from
// the set it had, as are lookups during that one fetch.
//
// Only JWK Sets and the discovery that leads to them belong here; a client
// of another document the auth server publishes, such as a revocation feed,
// belongs in a sibling package named for what it provides.
package jwks
