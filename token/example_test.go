package token_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

func Example() {
	// The auth server's side: a key, its kid, a signer.
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
	now := time.Now()
	raw, err := signer.Sign(&token.Claims{
		Issuer:    "https://auth.example",
		Subject:   "42",
		Audience:  []string{"latchkey"},
		ExpiresAt: now.Add(15 * time.Minute),
		IssuedAt:  now,
		Username:  "anna",
		Role:      "member",
	})
	if err != nil {
		log.Fatal(err)
	}

	// The resource server's side: a verifier pinned to the published key.
	v := token.NewVerifier(token.StaticKeys(signer.VerificationKey()),
		token.WithIssuer("https://auth.example"), token.WithAudience("latchkey"))
	claims, err := v.Verify(context.Background(), raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(claims.Subject, claims.Username, claims.HasRole("member"), claims.HasRole("admin"))
	// Output: 42 anna true false
}

func ExampleVerifier_Verify_errors() {
	secret := []byte("an example secret of at least 32 bytes")
	signer, _ := token.NewHMACSigner(secret)
	issued := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	raw, _ := signer.Sign(&token.Claims{
		Issuer: "https://auth.example", Subject: "42", Audience: []string{"latchkey"},
		ExpiresAt: issued.Add(15 * time.Minute),
	})

	at := func(t time.Time) *token.Verifier {
		return token.NewVerifier(token.StaticKeys(signer.VerificationKey()),
			token.WithIssuer("https://auth.example"), token.WithAudience("latchkey"),
			token.WithNow(func() time.Time { return t }))
	}
	_, err := at(issued.Add(time.Hour)).Verify(context.Background(), raw)
	fmt.Println(errors.Is(err, token.ErrExpired), errors.Is(err, token.ErrInvalid))
	_, err = at(issued).Verify(context.Background(), raw+"x")
	fmt.Println(errors.Is(err, token.ErrInvalid))
	// Output:
	// true true
	// true
}

func ExamplePublicJWK() {
	// The RFC 7638 example key, as a verifier would read it from a JWKS.
	var j token.JWK
	_ = json.Unmarshal([]byte(`{"kty":"RSA","kid":"2011-04-29","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}`), &j)
	key, err := j.Key()
	if err != nil {
		log.Fatal(err)
	}
	tp, _ := token.Thumbprint(key.Public)
	pub, _ := token.PublicJWK(key)
	fmt.Println(key.Alg, tp)
	fmt.Println(pub.Use, pub.Kid)
	// Output:
	// RS256 NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
	// sig 2011-04-29
}
