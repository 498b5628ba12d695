package latchkey

import (
	"errors"
	"fmt"
	"time"
)

// Every sentinel of the package is here. Callers branch on them with
// errors.Is; the specific errors wrap a generic one, so a caller that only
// needs "not found" or "conflict" matches those, and package server can
// still tell a person exactly what went wrong.

// Errors a Store returns.
var (
	// ErrNotFound is returned when the requested user, session, refresh
	// token or key does not exist.
	ErrNotFound = errors.New("not found")

	// ErrConflict is returned when a write would break a uniqueness rule
	// (a username taken regardless of case, a duplicate id) or when a
	// conditional update lost a race (the refresh token was no longer the
	// session's current one).
	ErrConflict = errors.New("conflict")

	// ErrForbidden is matched by every refusal of an action that no
	// caller may take, whatever their role.
	ErrForbidden = errors.New("forbidden")
)

// Errors the Service returns. Package server maps each to the contract's
// status, error code and description in one table.
var (
	// ErrUserNotFound is returned for a user id that names no user. It
	// matches ErrNotFound.
	ErrUserNotFound = fmt.Errorf("%w: no such user", ErrNotFound)

	// ErrUsernameTaken is returned by Register and CreateUser when the
	// username is taken regardless of case. It matches ErrConflict.
	ErrUsernameTaken = fmt.Errorf("%w: username taken", ErrConflict)

	// ErrSelfLockout is returned when an admin asks to demote or disable
	// themselves, so that the last admin cannot lock everyone out by
	// mistake. It matches ErrForbidden.
	ErrSelfLockout = fmt.Errorf("%w: admins cannot demote or disable themselves", ErrForbidden)

	// ErrNotAdmin is returned by the admin operations when the acting user
	// is not, or no longer, an enabled admin, whatever their token says.
	ErrNotAdmin = errors.New("admin role required")

	// ErrInvalidCredentials is returned by Login for an unknown user, a
	// wrong password and a disabled user alike, so that the answer does not
	// reveal which.
	ErrInvalidCredentials = errors.New("invalid username or password")

	// ErrInvalidGrant is returned by Refresh for a refresh token that is
	// unknown, expired, revoked or reused.
	ErrInvalidGrant = errors.New("refresh token invalid, expired or revoked")

	// ErrRegistrationClosed is returned by Register when the server does not
	// accept self-registration.
	ErrRegistrationClosed = errors.New("registration closed")

	// ErrSessionRevoked is returned by CheckSession for an access token whose
	// session was revoked or has expired.
	ErrSessionRevoked = errors.New("session revoked or expired")

	// ErrInvalidMFAToken is returned by LoginMFA for an mfaToken that is
	// unknown, expired or used, or whose user can no longer sign in. It
	// matches ErrInvalidGrant.
	ErrInvalidMFAToken = fmt.Errorf("%w: sign-in step expired or used", ErrInvalidGrant)

	// ErrSessionNotFound is returned by EndMySession for a session that is
	// not one of the caller's live sessions, whoever's it is, so that ids
	// are not confirmed. It matches ErrNotFound.
	ErrSessionNotFound = fmt.Errorf("%w: no such session", ErrNotFound)

	// ErrTOTPEnabled is returned when a user who has two-step sign-in on
	// asks to enrol again. It matches ErrConflict.
	ErrTOTPEnabled = fmt.Errorf("%w: two-step sign-in is already on", ErrConflict)

	// ErrTOTPNotEnabled is returned by DisableTOTP for a user without
	// two-step sign-in. It matches ErrNotFound.
	ErrTOTPNotEnabled = fmt.Errorf("%w: two-step sign-in is not on", ErrNotFound)

	// ErrInvalidCode is returned for a second-factor code that is wrong,
	// expired or already used. It matches ErrInvalidCredentials.
	ErrInvalidCode = fmt.Errorf("%w: wrong, expired or already used code", ErrInvalidCredentials)

	// ErrBusy is returned by Login, Register and CreateUser when more
	// password hashes are already waiting than the server can start soon.
	// The HTTP layer answers 429 with a short Retry-After.
	ErrBusy = errors.New("too many password checks in progress")
)

// ValidationError reports input that breaks a policy (username or password
// rules, an unknown role). Its message is written for the person who sent it.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// MFARequiredError is returned by Login when the password was right and
// the user has two-step sign-in on. Token goes back to the client, which
// completes the login with LoginMFA within MFAChallengeTTL.
type MFARequiredError struct{ Token string }

func (e *MFARequiredError) Error() string { return "a second factor is required" }

// RateLimitedError is returned by Login when too many attempts were made
// for the username or from the client address, and by Register when too
// many accounts were made from the client address.
type RateLimitedError struct {
	RetryAfter time.Duration
	// Attempts says what was limited, for a person: "login attempts",
	// "registrations from this address".
	Attempts string
	// limiter is the limiter key whose allowance ran out, for the audit
	// log's count of repeated refusals.
	limiter string
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many %s, retry after %s", e.Attempts, e.RetryAfter.Round(time.Second))
}
