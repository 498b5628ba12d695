package latchkey

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
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

// owaspMinimum is the OWASP Password Storage Cheat Sheet's table of
// argon2id configurations it holds equivalent, each with p=1: the least
// memory (KiB) for a number of passes. Index i is t = i+1.
var owaspMinimum = [...]uint32{47104, 19456, 12288, 9216, 7168}

// MinArgon2Memory is the least memory, in KiB, that OWASP's minimum allows
// with t passes: the cheat sheet's entry for t from 1 to 5, and for more
// passes the entry for 5. The table is not extrapolated past its last row:
// more passes over less memory trade memory-hardness, which is what makes
// GPU and ASIC attacks expensive, for time, which an attacker buys
// cheaply. t = 0 has no minimum (argon2id needs a pass) and returns 0.
func MinArgon2Memory(t uint32) uint32 {
	switch {
	case t == 0:
		return 0
	case int(t) > len(owaspMinimum):
		return owaspMinimum[len(owaspMinimum)-1]
	}
	return owaspMinimum[t-1]
}

// CheckMinimum reports whether p is at least OWASP's minimum argon2id cost
// and within what VerifyPassword accepts from a stored hash. The cheat
// sheet lists five points (m=47104 t=1 ... m=7168 t=5). Between them the
// rule is a step: a setting passes when its memory is at least the listed
// minimum for its own number of passes (MinArgon2Memory), so m=30000,t=2
// passes and m=30000,t=1 does not, even though m·t is larger for the
// second: an attacker's cost grows with memory, so memory below a row is
// never made up for by passes the row does not list. Threads may be more
// than 1: memory is the total over lanes, so lanes make a hash faster for
// the server without making it cheaper for an attacker.
func (p Argon2Params) CheckMinimum() error {
	switch {
	case p.Time == 0:
		return errors.New("t must be at least 1")
	case p.Threads == 0:
		return errors.New("p must be at least 1")
	case p.Time > maxArgonTime:
		return fmt.Errorf("t=%d is more than the %d passes a stored hash may ask for", p.Time, maxArgonTime)
	case p.Threads > maxArgonThreads:
		return fmt.Errorf("p=%d is more than the %d lanes a stored hash may ask for", p.Threads, maxArgonThreads)
	case p.Memory > maxArgonMemory:
		return fmt.Errorf("m=%d KiB is more than the %d KiB a stored hash may ask for", p.Memory, maxArgonMemory)
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("m=%d KiB is less than argon2id's 8 KiB per lane", p.Memory)
	}
	if least := MinArgon2Memory(p.Time); p.Memory < least {
		return fmt.Errorf("m=%d KiB with t=%d is below OWASP's minimum of m=%d KiB for t=%d (m=47104,t=1; m=19456,t=2; m=12288,t=3; m=9216,t=4; m=7168,t=5)",
			p.Memory, p.Time, least, p.Time)
	}
	return nil
}

// String writes p as ParseArgon2Params reads it and as PHC strings hold
// it: m=19456,t=2,p=1.
func (p Argon2Params) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// ParseArgon2Params reads an argon2id cost as PHC strings write it,
// "m=19456,t=2,p=1" (memory in KiB, passes, lanes), each key once, in any
// order, all three required (LATCHKEY_PASSWORD_HASH). It checks the form
// only; CheckMinimum judges the cost.
func ParseArgon2Params(s string) (Argon2Params, error) {
	var p Argon2Params
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Argon2Params{}, fmt.Errorf("want m=KiB,t=passes,p=lanes (as m=19456,t=2,p=1), got %q", s)
		}
		if seen[k] {
			return Argon2Params{}, fmt.Errorf("%s is given twice in %q", k, s)
		}
		seen[k] = true
		bits := 32
		switch k {
		case "m", "t":
		case "p":
			bits = 8
		default:
			return Argon2Params{}, fmt.Errorf("unknown key %q in %q (want m, t and p)", k, s)
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if err != nil {
			return Argon2Params{}, fmt.Errorf("%s=%s is not a whole number below 2^%d", k, v, bits)
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			p.Threads = uint8(n)
		}
	}
	for _, k := range []string{"m", "t", "p"} {
		if !seen[k] {
			return Argon2Params{}, fmt.Errorf("%s is missing from %q (want m=KiB,t=passes,p=lanes)", k, s)
		}
	}
	return p, nil
}
