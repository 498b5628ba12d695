package latchkey

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id's costs. They are written into every hash (PHC
// string form), so raising them later only affects new hashes, and old ones
// are upgraded at the owner's next login.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultArgon2 is OWASP's first recommended argon2id configuration
// (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane.
var DefaultArgon2 = Argon2Params{Memory: 19456, Time: 2, Threads: 1}

const (
	argonSaltLen = 16
	argonKeyLen  = 32
)

// HashPassword returns the argon2id hash of password in PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string, p Argon2Params) string {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(key))
}

// phc is a parsed argon2id PHC string.
type phc struct {
	params Argon2Params
	salt   []byte
	key    []byte
}

var errBadHash = errors.New("unsupported password hash")

// Bounds on parameters read from a stored hash, so that a corrupted or
// planted row cannot make one login allocate gigabytes.
const (
	maxArgonMemory  = 1 << 21 // 2 GiB in KiB
	maxArgonTime    = 64
	maxArgonThreads = 64
	maxArgonSaltLen = 64
	maxArgonKeyLen  = 64
)

func parsePHC(s string) (phc, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return phc{}, errBadHash
	}
	var h phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.params.Memory, &h.params.Time, &h.params.Threads); err != nil {
		return phc{}, errBadHash
	}
	if h.params.Memory == 0 || h.params.Memory > maxArgonMemory ||
		h.params.Time == 0 || h.params.Time > maxArgonTime ||
		h.params.Threads == 0 || h.params.Threads > maxArgonThreads {
		return phc{}, errBadHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > maxArgonSaltLen {
		return phc{}, errBadHash
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > maxArgonKeyLen {
		return phc{}, errBadHash
	}
	return h, nil
}

// VerifyPassword reports whether password matches the PHC hash, comparing
// in constant time, and whether the hash was made with weaker parameters
// than want and should be replaced.
func VerifyPassword(hash, password string, want Argon2Params) (ok, rehash bool, err error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	if subtle.ConstantTimeCompare(key, h.key) != 1 {
		return false, false, nil
	}
	rehash = h.params.Memory < want.Memory || h.params.Time < want.Time ||
		h.params.Threads != want.Threads || len(h.key) < argonKeyLen
	return true, rehash, nil
}
