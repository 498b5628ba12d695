package latchkey

import (
	"errors"
	"fmt"
	"time"
)

// Errors a Store returns. Callers branch on them with errors.Is.
var (
	// ErrNotFound is returned when the requested user, session, refresh
	// token or key does not exist.
	ErrNotFound = errors.New("not found")

	// ErrConflict is returned when a write would break a uniqueness rule
	// (a username taken regardless of case, a duplicate id) or when a
	// conditional update lost a race (the refresh token was no longer the
	// session's current one).
	ErrConflict = errors.New("conflict")
)

// Errors the Service returns. Package server maps each to the contract's
// status and error code in one table.
var (
	// ErrInvalidCredentials is returned by Login for an unknown user, a
	// wrong password and a disabled user alike, so that the answer does not
	// reveal which.
	ErrInvalidCredentials = errors.New("invalid username or password")

	// ErrInvalidGrant is returned by Refresh for a refresh token that is
	// unknown, expired, revoked or reused.
	ErrInvalidGrant = errors.New("refresh token is invalid, expired or revoked")

	// ErrRegistrationClosed is returned by Register when the server does not
	// accept self-registration.
	ErrRegistrationClosed = errors.New("registration is closed")

	// ErrSessionRevoked is returned by CheckSession for an access token whose
	// session was revoked or has expired.
	ErrSessionRevoked = errors.New("session revoked or expired")
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

// RateLimitedError is returned by Login when too many attempts were made
// for the username or from the client address.
type RateLimitedError struct {
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("too many login attempts, retry after %s", e.RetryAfter.Round(time.Second))
}
