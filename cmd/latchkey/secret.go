package main

import (
	"crypto/rand"
	"encoding/hex"
)

// newSecret is the tutorials' crypto.randomBytes(64).toString('hex').
func newSecret() string {
	b := make([]byte, 64)
	rand.Read(b)
	return hex.EncodeToString(b)
}
