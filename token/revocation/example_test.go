package revocation_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/revocation"
)

// A resource server follows the auth server's revocation feed and gives
// the Follower to its Verifier: a token of a session that was logged out
// is refused, with no call to the auth server per request.
func Example() {
	const issuer = "https://auth.example.com"
	// The auth server's feed, which lists one logged-out session.
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"1"`)
		fmt.Fprintf(w, `{"issuer":%q,"generatedAt":%q,"sessions":[{"sid":"logged-out","revokedAt":%[2]q}],"users":[]}`,
			issuer, time.Now().UTC().Format(time.RFC3339))
	}))
	defer feed.Close()

	f, err := revocation.New(revocation.Config{URL: feed.URL + "/.well-known/revocations", Issuer: issuer})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go f.Run(ctx)
	for f.Ready(ctx) != nil { // a readiness probe would say "not yet"
		time.Sleep(10 * time.Millisecond)
	}

	signer, keys := newSigner()
	verifier := token.NewVerifier(keys, token.WithIssuer(issuer), token.WithAudience("latchkey"),
		token.WithRevocations(f))
	for _, sid := range []string{"live", "logged-out"} {
		raw, err := signer.Sign(&token.Claims{Issuer: issuer, Subject: "42", Audience: []string{"latchkey"},
			SessionID: sid, ExpiresAt: time.Now().Add(15 * time.Minute)})
		if err != nil {
			log.Fatal(err)
		}
		_, err = verifier.Verify(ctx, raw)
		fmt.Printf("%s: accepted %v, revoked %v\n", sid, err == nil, errors.Is(err, token.ErrRevoked))
	}
	// Output:
	// live: accepted true, revoked false
	// logged-out: accepted false, revoked true
}

func newSigner() (*token.Signer, token.KeySource) {
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		log.Fatal(err)
	}
	s, err := token.NewSigner(token.ES256, "k1", priv)
	if err != nil {
		log.Fatal(err)
	}
	return s, token.StaticKeys(s.VerificationKey())
}
