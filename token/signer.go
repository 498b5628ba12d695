package token

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Signer signs access tokens with one key. It is safe for concurrent use.
type Signer struct {
	alg    string
	kid    string
	key    crypto.Signer // nil for HS256
	secret []byte        // HS256 only
	header string        // the encoded JOSE header, which never changes for a key
}

// NewSigner returns a Signer for an asymmetric algorithm. key must match alg
// (a P-256 ECDSA key for ES256, Ed25519 for EdDSA, RSA of at least 2048 bits
// for RS256) and kid must be set, because verifiers find keys only by kid.
//
// Any crypto.Signer works, so the private key may live in a KMS or HSM; this
// is why signing goes through crypto.Signer rather than golang-jwt, whose
// ES256 method accepts only *ecdsa.PrivateKey.
func NewSigner(alg, kid string, key crypto.Signer) (*Signer, error) {
	if key == nil {
		return nil, errors.New("new signer: nil key")
	}
	if kid == "" {
		return nil, errors.New("new signer: empty kid")
	}
	if alg == HS256 {
		return nil, errors.New("new signer: HS256 needs NewHMACSigner")
	}
	if _, err := (Key{ID: kid, Alg: alg, Public: key.Public()}).material(); err != nil {
		return nil, fmt.Errorf("new signer: %w", err)
	}
	return &Signer{alg: alg, kid: kid, key: key, header: encodeHeader(alg, kid)}, nil
}

// NewHMACSigner returns an HS256 Signer for shared-secret mode; its
// [Signer.VerificationKey] is what a verifier of the same secret needs. A
// secret shorter than 32 bytes or that looks like a placeholder is refused
// with an error wrapping [ErrWeakSecret]: HMAC is only as strong as its
// secret, and a weak one is guessable offline from any single token.
func NewHMACSigner(secret []byte) (*Signer, error) {
	if err := checkSecret(secret); err != nil {
		return nil, err
	}
	return &Signer{alg: HS256, secret: slices.Clone(secret), header: encodeHeader(HS256, "")}, nil
}

// checkSecret reports why secret is too weak to key HMAC, saying nothing of
// its content beyond its length.
func checkSecret(secret []byte) error {
	if len(secret) < minSecretLen {
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrWeakSecret, len(secret), minSecretLen)
	}
	var seen [256]bool
	distinct := 0
	for _, b := range secret {
		if !seen[b] {
			seen[b] = true
			distinct++
		}
	}
	if distinct < minSecretBytes {
		return fmt.Errorf("%w: fewer than %d distinct bytes, as in a placeholder repeated to length", ErrWeakSecret, minSecretBytes)
	}
	return nil
}

func encodeHeader(alg, kid string) string {
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid,omitempty"`
	}{alg, "JWT", kid})
	if err != nil {
		panic(err) // strings always marshal
	}
	return b64.EncodeToString(h)
}

// Alg returns the signing algorithm.
func (s *Signer) Alg() string { return s.alg }

// KeyID returns the kid put in every token's header ("" for HS256).
func (s *Signer) KeyID() string { return s.kid }

// VerificationKey returns the key a Verifier needs for this Signer's tokens:
// the public half, or for HS256 a copy of the secret.
func (s *Signer) VerificationKey() Key {
	if s.alg == HS256 {
		return Key{Alg: HS256, Secret: slices.Clone(s.secret)}
	}
	return Key{ID: s.kid, Alg: s.alg, Public: s.key.Public()}
}

// Sign returns the compact JWS of c. It refuses claims without ExpiresAt or
// Subject, which every verifier would reject anyway. It sets nothing on the
// caller's behalf (not iat, not jti): the issuer decides those.
func (s *Signer) Sign(c *Claims) (string, error) {
	if c == nil || c.ExpiresAt.IsZero() || c.Subject == "" {
		return "", errors.New("sign: claims need ExpiresAt and Subject")
	}
	payload, err := json.Marshal(toWire(c))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	var b strings.Builder
	b.Grow(len(s.header) + 1 + b64.EncodedLen(len(payload)) + 1 + 350)
	b.WriteString(s.header)
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(payload))
	input := b.String()
	sig, err := s.sign(input)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	b.WriteByte('.')
	b.WriteString(b64.EncodeToString(sig))
	return b.String(), nil
}

func (s *Signer) sign(input string) ([]byte, error) {
	switch s.alg {
	case HS256:
		return jwt.SigningMethodHS256.Sign(input, s.secret)
	case EdDSA:
		// Ed25519 hashes internally; crypto.Hash(0) says the message is not
		// prehashed.
		return s.key.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	}
	digest := sha256.Sum256([]byte(input))
	sig, err := s.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil || s.alg != ES256 {
		return sig, err
	}
	return ecdsaRaw(sig)
}

// ecdsaRaw converts crypto.Signer's ASN.1 ECDSA signature into JWS's fixed
// 64-byte R || S (RFC 7518 §3.4).
func ecdsaRaw(der []byte) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 ||
		rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return nil, errors.New("bad ECDSA signature from signer")
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}
