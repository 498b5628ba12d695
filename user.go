package latchkey

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
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
	// Generation counts the user-level revocations (role changed,
	// disabled, signed out everywhere). Access tokens carry the generation
	// they were issued under, so the revocation feed can refuse exactly the
	// tokens issued before an event and never one issued after it.
	Generation int64
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

// DefaultRegisterRatePerIP bounds self-registration per client address:
// ten accounts, then one every six minutes, so one address cannot
// mass-create accounts while a classroom behind one NAT address can still
// sign up together.
var DefaultRegisterRatePerIP = Rate{Burst: 10, Every: 6 * time.Minute}

// Register creates a member account for a client signing themselves up.
// Input that breaks the policy is refused before it costs an attempt;
// every other attempt from the client's address counts (a taken username
// too, so registration cannot be used to probe names quickly), and past
// the allowance Register returns a *RateLimitedError.
func (s *Service) Register(ctx context.Context, username, password string, c Client) (*User, error) {
	if s.cfg.RegistrationClosed {
		return nil, ErrRegistrationClosed
	}
	if err := validateAccount(username, password, RoleMember); err != nil {
		return nil, err
	}
	key := ""
	if c.IP != "" {
		key = "register:ip:" + c.IP
		wait, err := s.cfg.Limiter.Take(ctx, key, s.cfg.RegisterRatePerIP)
		if err != nil {
			return nil, fmt.Errorf("register limiter: %w", err)
		}
		if wait > 0 {
			return nil, &RateLimitedError{RetryAfter: wait, Attempts: "registrations from this address"}
		}
	}
	u, err := s.CreateUser(ctx, username, password, RoleMember)
	if err == nil {
		s.audit(ctx, AuditRegistered, c, u.ID, "", "username "+strconv.Quote(u.Username))
	}
	if key != "" && (errors.Is(err, ErrBusy) || ctx.Err() != nil) {
		// Turned away before anything was tried: the attempt is given back.
		if rerr := s.cfg.Limiter.Refund(ctx, key, s.cfg.RegisterRatePerIP); rerr != nil {
			s.cfg.Logger.WarnContext(ctx, "refund register limiter", "err", rerr)
		}
	}
	return u, err
}

func validateAccount(username, password string, role Role) error {
	if err := ValidateUsername(username); err != nil {
		return err
	}
	if err := ValidatePassword(password); err != nil {
		return err
	}
	if !role.Valid() {
		return invalid("role", "must be %q or %q", RoleAdmin, RoleMember)
	}
	return nil
}

// CreateUser creates an account with the given role. It returns a
// *ValidationError for input that breaks the policy and ErrUsernameTaken if
// the username is taken regardless of case.
func (s *Service) CreateUser(ctx context.Context, username, password string, role Role) (*User, error) {
	if err := validateAccount(username, password, role); err != nil {
		return nil, err
	}
	var hash string
	if err := s.gate.do(ctx, func() { hash = HashPassword(password, s.cfg.Argon2) }); err != nil {
		return nil, err
	}
	u := &User{
		ID:           newID(),
		Username:     username,
		Role:         role,
		PasswordHash: hash,
		CreatedAt:    s.now(),
	}
	if err := s.cfg.Store.CreateUser(ctx, u); errors.Is(err, ErrConflict) {
		return nil, ErrUsernameTaken
	} else if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// EnsureUser creates the account unless a user with that username exists.
// It reports whether it created one. The start-up admin
// (LATCHKEY_ADMIN_USERNAME) goes through here.
func (s *Service) EnsureUser(ctx context.Context, username, password string, role Role) (bool, error) {
	_, err := s.CreateUser(ctx, username, password, role)
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// User returns the user with id, or ErrUserNotFound.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	return s.userByID(ctx, id)
}

// userByID is Store.UserByID with the answer for a person: an id that is
// not one this server makes is not looked up, and a missing user is
// ErrUserNotFound.
func (s *Service) userByID(ctx context.Context, id string) (*User, error) {
	if !validID(id) {
		return nil, ErrUserNotFound
	}
	u, err := s.cfg.Store.UserByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUserNotFound
	}
	return u, err
}

// newID returns a UUIDv7: random enough to be unguessable and ordered by
// creation, which makes id-based pagination list users oldest first.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// validID reports whether id has the form of the ids this server makes.
func validID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil && len(id) == 36
}
