// Package jwtlibs compares Go JWT libraries on Latchkey's exact access
// token: header alg, typ "JWT" and kid (no kid with HS256); claims iss, sub,
// aud, exp, iat, nbf, jti, sid, username and role; ES256, EdDSA, RS256 and
// HS256. Each library signs the token and parses and verifies it with its
// idiomatic call, pinning the algorithm and checking issuer, audience, exp
// (required), nbf and iat with a 30 s leeway, then reading the private
// claims, as a resource server must:
//
//   - github.com/golang-jwt/jwt/v5 (what token uses underneath):
//     jwt.NewParser(WithValidMethods, WithIssuer, WithAudience,
//     WithExpirationRequired, WithLeeway).ParseWithClaims into a struct
//     embedding jwt.RegisteredClaims.
//   - github.com/lestrrat-go/jwx/v3: jwt.Parse with jwt.WithKey (a jwk.Key
//     carrying the kid), WithIssuer, WithAudience, WithRequiredClaim("exp"),
//     WithAcceptableSkew; private claims with Token.Get.
//   - github.com/go-jose/go-jose/v4: jwt.ParseSigned with the one allowed
//     algorithm, Claims(key, &jwt.Claims, &private), an exp-present check and
//     Claims.ValidateWithLeeway.
//   - latchkey token (golang-jwt v5 inside, plus the contract's extra checks
//     and the 8 KiB limit): token.Verifier with the verified-token cache off
//     ("latchkey-uncached") and on ("latchkey-cached").
//   - "raw": the bare standard-library signature check of the same token's
//     signing input, the floor every verifier is measured against.
//
// All verify the same token, signed by Latchkey's token.Signer; TestAgree
// checks that every library accepts it with the same claims, that
// Latchkey's verifier accepts every library's token, and that each library
// refuses a wrong audience, so the benchmarks compare equal work.
//
// It is a module of its own so that the main module never depends on the
// libraries it is compared with (it uses the main module through a replace
// directive). Run it with
//
//	cd bench/jwtlibs
//	go test -run '^$' -bench . -benchmem -count 5 | tee new.txt
//	go test -run TestAgree -v                         # the fairness check
//
// and compare rows within one run (benchstat summarises -count runs).
package jwtlibs
