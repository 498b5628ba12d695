package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// JWK is a public JSON Web Key (RFC 7517, RFC 7518 §6, RFC 8037): an EC P-256,
// OKP Ed25519 or RSA key. There are no private members on purpose: this type
// is only ever published or read from a JWKS.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

// JWKS is a JWK Set, the document served at the JWKS URL.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// PublicJWK returns the published form of k, with use "sig". It refuses
// HS256 keys, since a shared secret must never be published, and keys without
// an ID, since verifiers find keys only by kid.
func PublicJWK(k Key) (JWK, error) {
	if k.Alg == HS256 {
		return JWK{}, errors.New("public jwk: HS256 secrets are never published")
	}
	if k.ID == "" {
		return JWK{}, errors.New("public jwk: key has no id")
	}
	if _, err := k.material(); err != nil {
		return JWK{}, fmt.Errorf("public jwk: %w", err)
	}
	j := JWK{Kid: k.ID, Alg: k.Alg, Use: "sig"}
	switch p := k.Public.(type) {
	case *ecdsa.PublicKey:
		x, y, err := ecCoordinates(p)
		if err != nil {
			return JWK{}, fmt.Errorf("public jwk: %w", err)
		}
		j.Kty, j.Crv, j.X, j.Y = "EC", "P-256", x, y
	case ed25519.PublicKey:
		j.Kty, j.Crv, j.X = "OKP", "Ed25519", b64.EncodeToString(p)
	case *rsa.PublicKey:
		n, e, err := rsaParams(p)
		if err != nil {
			return JWK{}, fmt.Errorf("public jwk: %w", err)
		}
		j.Kty, j.N, j.E = "RSA", n, e
	}
	return j, nil
}

// Key validates j and returns it as a verification key. It requires a kid,
// "use" absent or "sig", an "alg" that agrees with the key type (when absent
// it is taken from the type, which for the types accepted here names exactly
// one supported algorithm), an EC point on P-256, a 32-byte Ed25519 key, and
// an RSA modulus of 2048 to 8192 bits with a sane exponent.
func (j JWK) Key() (Key, error) {
	if j.Kid == "" {
		return Key{}, errors.New("jwk: missing kid")
	}
	if j.Use != "" && j.Use != "sig" {
		return Key{}, fmt.Errorf("jwk %q: use %q is not sig", j.Kid, j.Use)
	}
	k := Key{ID: j.Kid}
	switch {
	case j.Kty == "EC" && j.Crv == "P-256":
		k.Alg = ES256
		x, errX := decodeFixed(j.X, 32)
		y, errY := decodeFixed(j.Y, 32)
		if errX != nil || errY != nil {
			return Key{}, fmt.Errorf("jwk %q: bad EC coordinates", j.Kid)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return Key{}, fmt.Errorf("jwk %q: %w", j.Kid, err)
		}
		k.Public = pub
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		k.Alg = EdDSA
		x, err := decodeFixed(j.X, ed25519.PublicKeySize)
		if err != nil {
			return Key{}, fmt.Errorf("jwk %q: bad Ed25519 key", j.Kid)
		}
		k.Public = ed25519.PublicKey(x)
	case j.Kty == "RSA" && j.Crv == "":
		k.Alg = RS256
		pub, err := rsaKey(j.N, j.E)
		if err != nil {
			return Key{}, fmt.Errorf("jwk %q: %w", j.Kid, err)
		}
		k.Public = pub
	default:
		return Key{}, fmt.Errorf("jwk %q: unsupported key type %q/%q", j.Kid, j.Kty, j.Crv)
	}
	if j.Alg != "" && j.Alg != k.Alg {
		return Key{}, fmt.Errorf("jwk %q: alg %q does not match key type %s", j.Kid, j.Alg, j.Kty)
	}
	if _, err := k.material(); err != nil {
		return Key{}, fmt.Errorf("jwk: %w", err)
	}
	return k, nil
}

// ParseJWKS reads a JWK Set, such as the body served at a JWKS URL, and
// returns its usable keys in document order, ready for [StaticKeys].
// Members this package cannot use (other key types, "use":"enc", weak keys)
// are skipped, as RFC 7517 §5 asks, but a document that is not a JWK Set,
// repeats a kid, or lists keys none of which is usable is refused whole, so
// a broken deployment never silently replaces good cached keys with nothing.
// An empty "keys" array is a valid answer: a server with no keys yet.
func ParseJWKS(data []byte) ([]Key, error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("parse jwks: no keys member")
	}
	keys := make([]Key, 0, len(*doc.Keys))
	seen := make(map[string]bool, len(*doc.Keys))
	for _, raw := range *doc.Keys {
		var j JWK
		if err := json.Unmarshal(raw, &j); err != nil {
			continue
		}
		k, err := j.Key()
		if err != nil {
			continue
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("parse jwks: kid %q appears twice", k.ID)
		}
		seen[k.ID] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 && len(*doc.Keys) > 0 {
		return nil, errors.New("parse jwks: no usable key")
	}
	return keys, nil
}

// decodeFixed decodes strict unpadded base64url of exactly n bytes. Strict
// decoding keeps one encoding per key, so equal keys compare equal as text.
func decodeFixed(s string, n int) ([]byte, error) {
	if b64.DecodedLen(len(s)) != n {
		return nil, errors.New("wrong length")
	}
	b, err := b64.Strict().DecodeString(s)
	if err != nil || len(b) != n {
		return nil, errors.New("bad base64url")
	}
	return b, nil
}

func rsaKey(n, e string) (*rsa.PublicKey, error) {
	if len(n) > b64.EncodedLen(maxRSABits/8) || len(e) > 8 {
		return nil, errors.New("RSA parameters too large")
	}
	nb, err := b64.Strict().DecodeString(n)
	if err != nil || len(nb) == 0 || nb[0] == 0 {
		return nil, errors.New("bad RSA modulus")
	}
	eb, err := b64.Strict().DecodeString(e)
	if err != nil || len(eb) == 0 || len(eb) > 4 || eb[0] == 0 {
		return nil, errors.New("bad RSA exponent")
	}
	var exp int
	for _, c := range eb {
		exp = exp<<8 | int(c)
	}
	// Go's crypto/rsa refuses even and tiny exponents and those above 2^31-1
	// at verification time; refusing them here reports a bad JWKS once, when
	// it is loaded, instead of failing every token.
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return nil, errors.New("bad RSA exponent")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: exp}
	if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("RSA key of %d bits, want %d to %d", bits, minRSABits, maxRSABits)
	}
	if pub.N.Bit(0) == 0 {
		return nil, errors.New("bad RSA modulus")
	}
	return pub, nil
}
