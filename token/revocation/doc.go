// Package revocation follows an auth server's revocation feed
// (GET /.well-known/revocations) so that a [token.Verifier] refuses revoked
// tokens with no call per request: a [Follower] fetches the feed in the
// background and answers [token.Revoker] from the list in memory.
//
//	f, err := revocation.New(revocation.Config{
//		URL:    "https://auth.example.com/.well-known/revocations",
//		Issuer: "https://auth.example.com",
//	})
//	go f.Run(ctx)
//	v := token.NewVerifier(keys, token.WithIssuer(issuer), token.WithAudience(aud),
//		token.WithRevocations(f))
//
// A token is refused ([token.ErrRevoked], which matches [token.ErrInvalid])
// when its "sid" is listed, or when its "sub" is listed with a "gen" above
// the token's (a token without "gen" counts as 0). The feed lists an entry
// for the access TTL plus the leeway after its event, after which every
// token it would refuse has expired, so each fetch replaces the whole list.
//
// # Following
//
// The feed is fetched every [Config.Poll] (2 s by default), less up to a
// fifth at random so that verifiers started together do not poll together,
// and never more: with the auth server's one-second rebuild, a revocation
// is refused within the poll interval plus one second. Each request after
// the first sends If-None-Match, so an unchanged feed costs a 304. A fetch
// that fails is retried after the poll interval, doubling up to
// [Config.MaxBackoff] (30 s), so an auth server in trouble gets fewer
// requests, not more.
//
// # What is never believed
//
// A fetch that fails in any way leaves the list in force untouched: the
// server down or slow past [Config.Timeout], a status other than 200 or
// 304, a body over [Config.MaxBodySize] (8 MiB), anything that is not the
// feed's JSON, an "issuer" other than [Config.Issuer], an entry without its
// id, or a document older (by "generatedAt") than the list in force, which
// a lagging replica behind a load balancer could otherwise serve to undo a
// revocation for a second. Only a document that passes every check
// replaces the list.
//
// # Outages
//
// Before the first successful fetch there is no list, and [Follower.Revoked]
// answers [token.ErrRevocationsUnavailable] (a 5xx, not a 401, through the
// bearer package), as a remote JWKS answers before its first fetch: a
// verifier that restarts during an outage must not accept tokens revoked
// before it started. [Follower.Ready] fails meanwhile.
//
// After that, an outage of any length keeps the last list: it goes on
// refusing everything it listed, and revocations made during the outage
// are missed until the feed answers again, when the first fetch brings
// them all (the feed lists everything of the last token lifetime). While
// the auth server is down nothing can be revoked, so the list is complete;
// what an outage loses is revocations made where the auth server is up but
// this verifier cannot reach it. [Follower.Status] reports the list's age
// and whether it is stale, for /readyz and metrics.
//
// A deployment that prefers refusing to serving on an old list sets
// [Config.MaxStale]: once the list is older, Ready fails (a load balancer
// stops sending traffic), and with [Config.FailClosed] every token is
// refused with [token.ErrRevocationsUnavailable] until a fetch succeeds.
// Neither is the default, because it would turn an auth server outage into
// an outage of every resource server, while what an old list misses is
// bounded anyway: a revoked token it still accepts expires within one
// access TTL of its issue.
//
// The package depends on the standard library and token only.
package revocation
