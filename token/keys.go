package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// The supported algorithms (RFC 7518, RFC 8037). Each key is pinned to one.
const (
	ES256 = "ES256" // ECDSA P-256 with SHA-256: the default
	EdDSA = "EdDSA" // Ed25519
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, for verifiers that know nothing else
	HS256 = "HS256" // HMAC SHA-256 with a shared secret of at least 32 bytes
)

// Key sizes below these are refused everywhere: weaker keys are either
// forgeable (short HMAC secrets) or below current guidance (RSA). The RSA
// ceiling bounds the work an untrusted JWKS can make each verification cost.
const (
	minSecretLen = 32
	minRSABits   = 2048
	maxRSABits   = 8192

	// minSecretBytes is the fewest distinct byte values a shared secret may
	// have. Random secrets clear it easily (hex has 16, base64 64); a word
	// repeated to length does not.
	minSecretBytes = 10
)

var b64 = base64.RawURLEncoding

// GenerateKey makes a new private key for alg: P-256 for ES256, Ed25519 for
// EdDSA, 2048-bit RSA for RS256. HS256 has no key pair; see [NewHMACSigner].
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case RS256:
		return rsa.GenerateKey(rand.Reader, minRSABits)
	default:
		return nil, fmt.Errorf("generate key: unsupported algorithm %q", alg)
	}
}

// Thumbprint returns the RFC 7638 JWK thumbprint of pub (base64url SHA-256,
// no padding). It names a key by its content, so a kid derived from it is
// stable across restarts and cannot collide between different keys. pub is a
// *ecdsa.PublicKey (P-256), ed25519.PublicKey or *rsa.PublicKey.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	// RFC 7638 hashes the required members in lexicographic order with no
	// whitespace; every value is base64url, which never needs JSON escaping.
	var s string
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		x, y, err := ecCoordinates(k)
		if err != nil {
			return "", fmt.Errorf("thumbprint: %w", err)
		}
		s = `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("thumbprint: bad Ed25519 key size")
		}
		s = `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(k) + `"}`
	case *rsa.PublicKey:
		n, e, err := rsaParams(k)
		if err != nil {
			return "", fmt.Errorf("thumbprint: %w", err)
		}
		s = `{"e":"` + e + `","kty":"RSA","n":"` + n + `"}`
	default:
		return "", fmt.Errorf("thumbprint: unsupported key type %T", pub)
	}
	sum := sha256.Sum256([]byte(s))
	return b64.EncodeToString(sum[:]), nil
}

// ecCoordinates returns the base64url of the fixed-width (32-byte) X and Y
// of a P-256 key, as RFC 7518 requires.
func ecCoordinates(k *ecdsa.PublicKey) (x, y string, err error) {
	if k == nil || k.Curve != elliptic.P256() {
		return "", "", errors.New("EC key is not P-256")
	}
	p, err := k.Bytes() // 0x04 || X || Y
	if err != nil {
		return "", "", err
	}
	return b64.EncodeToString(p[1:33]), b64.EncodeToString(p[33:]), nil
}

func rsaParams(k *rsa.PublicKey) (n, e string, err error) {
	if k == nil || k.N == nil || k.E <= 0 {
		return "", "", errors.New("bad RSA key")
	}
	return b64.EncodeToString(k.N.Bytes()), b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()), nil
}

// Key is a verification key with the one algorithm it may verify. Public is
// a *ecdsa.PublicKey (ES256), ed25519.PublicKey (EdDSA) or *rsa.PublicKey
// (RS256); Secret is set for HS256 only, and ID is "" in shared-secret mode.
type Key struct {
	ID     string
	Alg    string
	Public crypto.PublicKey
	Secret []byte
}

// Equal reports whether k and o are the same key, for the same algorithm,
// under the same ID. A key source uses it to tell a refetched set that only
// adds keys from one that withdraws or replaces a key (see
// [VersionedKeySource]).
func (k Key) Equal(o Key) bool {
	if k.ID != o.ID || k.Alg != o.Alg || subtle.ConstantTimeCompare(k.Secret, o.Secret) != 1 {
		return false
	}
	if k.Public == nil || o.Public == nil {
		return k.Public == nil && o.Public == nil
	}
	// Every public key type of the standard library has this method.
	p, ok := k.Public.(interface{ Equal(crypto.PublicKey) bool })
	return ok && p.Equal(o.Public)
}

// material returns what golang-jwt's signing method for k.Alg expects,
// after checking that the key really is of that algorithm's type and strong
// enough. Doing this on every lookup, not only when keys are loaded, means a
// hand-built Key can never pair an algorithm with the wrong kind of key.
func (k Key) material() (any, error) {
	switch k.Alg {
	case ES256:
		if p, ok := k.Public.(*ecdsa.PublicKey); ok && p != nil && p.Curve == elliptic.P256() {
			return p, nil
		}
	case EdDSA:
		if p, ok := k.Public.(ed25519.PublicKey); ok && len(p) == ed25519.PublicKeySize {
			return p, nil
		}
	case RS256:
		if p, ok := k.Public.(*rsa.PublicKey); ok && p != nil && p.N != nil {
			if bits := p.N.BitLen(); bits >= minRSABits && bits <= maxRSABits {
				return p, nil
			}
		}
	case HS256:
		if k.Public == nil && len(k.Secret) >= minSecretLen {
			return k.Secret, nil
		}
	default:
		return nil, fmt.Errorf("key %q: unsupported algorithm %q", k.ID, k.Alg)
	}
	return nil, fmt.Errorf("key %q: not a valid %s key", k.ID, k.Alg)
}
