package latchkey

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// Keys is the auth server's key material: the key it signs with and every
// public key it publishes and accepts.
type Keys struct {
	Signer *token.Signer
	// Verify holds the public half of every stored key (or the shared
	// secret), for the JWKS document and the server's own verifier.
	Verify []token.Key
}

// LoadKeys returns the newest stored key for alg, generating and storing
// one on first start. Keys of other algorithms stay published, so tokens
// signed before a change of LATCHKEY_SIGNING_ALG verify until they expire.
//
// Replicas starting at once on an empty database each propose a key, and
// Store.InitSigningKey keeps exactly one, so they all sign with it and
// publish the same JWKS.
func LoadKeys(ctx context.Context, st Store, alg string, now time.Time) (*Keys, error) {
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	var signing *SigningKey
	for _, k := range stored {
		if k.Alg == alg {
			signing = k
			break
		}
	}
	if signing == nil {
		priv, err := token.GenerateKey(alg)
		if err != nil {
			return nil, fmt.Errorf("generate %s key: %w", alg, err)
		}
		kid, err := token.Thumbprint(priv.Public())
		if err != nil {
			return nil, fmt.Errorf("thumbprint: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, fmt.Errorf("encode %s key: %w", alg, err)
		}
		proposed := &SigningKey{ID: kid, Alg: alg, Private: der, CreatedAt: now.UTC().Truncate(time.Microsecond)}
		if signing, err = st.InitSigningKey(ctx, proposed); err != nil {
			return nil, fmt.Errorf("store signing key: %w", err)
		}
		// Another replica's key may have won; read the set it is now part of.
		if stored, err = st.SigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("load signing keys: %w", err)
		}
	}

	keys := &Keys{}
	for _, k := range stored {
		priv, err := parsePrivate(k)
		if err != nil {
			return nil, err
		}
		if k.ID == signing.ID {
			if keys.Signer, err = token.NewSigner(k.Alg, k.ID, priv); err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
			}
		}
		keys.Verify = append(keys.Verify, token.Key{ID: k.ID, Alg: k.Alg, Public: priv.Public()})
	}
	return keys, nil
}

// SharedSecretKeys returns the key material for shared-secret (HS256)
// mode, where nothing is stored or published.
func SharedSecretKeys(secret []byte) (*Keys, error) {
	s, err := token.NewHMACSigner(secret)
	if err != nil {
		return nil, err
	}
	return &Keys{Signer: s, Verify: []token.Key{s.VerificationKey()}}, nil
}

func parsePrivate(k *SigningKey) (crypto.Signer, error) {
	p, err := x509.ParsePKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", k.ID, err)
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T is not a crypto.Signer", k.ID, p)
	}
	return s, nil
}
