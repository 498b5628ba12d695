package jwks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/jwks"
)

// A resource server finds the auth server's JWKS by discovery and verifies
// tokens against it; the keys are fetched once and cached.
func Example() {
	signer, authServer := startAuthServer()
	defer authServer.Close()

	ctx := context.Background()
	issuer, jwksURI, err := jwks.Discover(ctx, nil, authServer.URL)
	if err != nil {
		log.Fatal(err)
	}
	keys, err := jwks.NewRemote(jwks.Config{URL: jwksURI})
	if err != nil {
		log.Fatal(err)
	}
	verifier := token.NewVerifier(keys, token.WithIssuer(issuer), token.WithAudience("latchkey"))

	now := time.Now()
	raw, err := signer.Sign(&token.Claims{
		Issuer: issuer, Subject: "42", Audience: []string{"latchkey"},
		ExpiresAt: now.Add(15 * time.Minute), IssuedAt: now,
	})
	if err != nil {
		log.Fatal(err)
	}
	claims, err := verifier.Verify(ctx, raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Subject)

	// A kid the auth server never published is a refused token, not an
	// outage.
	_, err = keys.Key(ctx, "made-up")
	fmt.Println(errors.Is(err, token.ErrUnknownKey), errors.Is(err, token.ErrKeysUnavailable))
	// Output:
	// 42
	// true false
}

// startAuthServer stands in for Latchkey: it signs with one ES256 key and
// publishes discovery and the JWKS.
func startAuthServer() (*token.Signer, *httptest.Server) {
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		log.Fatal(err)
	}
	kid, err := token.Thumbprint(priv.Public())
	if err != nil {
		log.Fatal(err)
	}
	signer, err := token.NewSigner(token.ES256, kid, priv)
	if err != nil {
		log.Fatal(err)
	}
	pub, err := token.PublicJWK(signer.VerificationKey())
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/.well-known/jwks.json"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(token.JWKS{Keys: []token.JWK{pub}})
	})
	return signer, srv
}
