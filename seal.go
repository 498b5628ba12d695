package latchkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
)

// sealer seals secrets at rest (signing keys, TOTP secrets) with
// AES-256-GCM under LATCHKEY_KEY_ENCRYPTION_KEY. Each sealed value is
// bound to a label naming what it is and whose it is, so that a sealed
// blob copied onto another row, or into another column, does not open.
type sealer struct{ aead cipher.AEAD }

// newSealer returns a sealer for a 32-byte key, or nil for no key.
func newSealer(key []byte) (*sealer, error) {
	if key == nil {
		return nil, nil
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("latchkey: key-encryption key is %d bytes, want 32", len(key))
	}
	block, _ := aes.NewCipher(key) // cannot fail for 32 bytes
	aead, _ := cipher.NewGCM(block)
	return &sealer{aead}, nil
}

func (s *sealer) seal(label string, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(label))
}

// open returns ErrWrongEncryptionKey for anything that does not open
// under this key and label.
func (s *sealer) open(label string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, ErrWrongEncryptionKey
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(label))
	if err != nil {
		return nil, ErrWrongEncryptionKey
	}
	return plain, nil
}
