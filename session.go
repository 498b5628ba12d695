package latchkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"
)

// Session is one login. Its refresh tokens form a chain in which only the
// newest is live; the server keeps only their SHA-256 hashes.
type Session struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastUsedAt time.Time
	// ExpiresAt is when the session dies unless used again: LastUsedAt plus
	// the idle lifetime, never past CreatedAt plus the absolute lifetime.
	ExpiresAt time.Time

	// RevokedAt is zero while the session is live.
	RevokedAt    time.Time
	RevokeReason string

	UserAgent string
	IP        string

	// CurrentHash is the hash of the one live refresh token.
	CurrentHash []byte
	// PreviousHash is the hash of the token CurrentHash replaced, retired at
	// PreviousRetiredAt. Presenting it within the grace window returns the
	// current token again, which PreviousSuccessor holds sealed under a key
	// derived from the previous token itself: the server can open it only
	// when the client presents that token, so a copy of the database does
	// not yield a live refresh token.
	PreviousHash      []byte
	PreviousRetiredAt time.Time
	PreviousSuccessor []byte
}

// Revoked reports whether the session was revoked.
func (s *Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// refreshTokenBytes is the entropy of a refresh token: 256 bits.
const refreshTokenBytes = 32

// newRefreshToken returns a new opaque refresh token, base64url without
// padding, and its hash.
func newRefreshToken() (string, []byte) {
	b := make([]byte, refreshTokenBytes)
	rand.Read(b) // never returns an error; crashes the process if the CSPRNG fails
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok)
}

// hashToken is how refresh tokens are stored and looked up. A plain SHA-256
// suffices: the input has 256 bits of entropy, so there is nothing to
// brute-force and no need for a slow hash or salt.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// successorKey derives the key that seals a token's successor from the
// token itself, with a label so that it differs from the stored hash.
func successorKey(predecessor string) []byte {
	h := sha256.Sum256([]byte("latchkey refresh successor v1\x00" + predecessor))
	return h[:]
}

// sealSuccessor encrypts successor with AES-256-GCM under a key derived
// from predecessor.
func sealSuccessor(predecessor, successor string) []byte {
	aead := newAEAD(successorKey(predecessor))
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(successor), nil)
}

// openSuccessor reverses sealSuccessor; it fails for any other predecessor.
func openSuccessor(predecessor string, sealed []byte) (string, error) {
	aead := newAEAD(successorKey(predecessor))
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("sealed successor too short")
	}
	nonce, ct := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, nil)
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}
