package latchkey

import (
	"time"
	"unicode/utf8"
)

// Role is what a user may do. The contract knows two.
type Role string

const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is one of the contract's roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember }

// User is an account on the auth server.
type User struct {
	ID       string
	Username string // as registered; lookups ignore case
	Role     Role
	// PasswordHash is an argon2id PHC string; it never leaves the server.
	PasswordHash string
	Disabled     bool
	CreatedAt    time.Time
}

// Username and password bounds from the contract.
const (
	MinUsernameLen = 3
	MaxUsernameLen = 64
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// ValidateUsername applies the contract's rule: 3–64 characters from ASCII
// letters, digits and . _ - @. Restricting to ASCII keeps look-alike
// Unicode names (Cyrillic "а" for Latin "a") from impersonating others.
func ValidateUsername(name string) error {
	if len(name) < MinUsernameLen || len(name) > MaxUsernameLen {
		return invalid("username", "must be %d to %d characters long", MinUsernameLen, MaxUsernameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '-', c == '@':
		default:
			return invalid("username", "may contain only ASCII letters, digits and . _ - @")
		}
	}
	return nil
}

// ValidatePassword applies the contract's rule: 8–128 characters, where a
// character is a Unicode code point, so a passphrase in any script counts
// the way its owner counts it.
func ValidatePassword(password string) error {
	if !utf8.ValidString(password) {
		return invalid("password", "must be valid UTF-8")
	}
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLen || n > MaxPasswordLen {
		return invalid("password", "must be %d to %d characters long", MinPasswordLen, MaxPasswordLen)
	}
	return nil
}
