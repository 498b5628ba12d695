package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// TestErrorTable pins the one table from domain errors to the contract:
// each specific error gets its own sentence, and the generic error it
// wraps gets a sentence that claims nothing about users, so a new caller
// of ErrNotFound or ErrConflict cannot answer "No such user." by accident.
func TestErrorTable(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		desc   string
	}{
		{"validation", &latchkey.ValidationError{Field: "username", Message: "too short"}, 400, "invalid_request", "username: too short"},
		{"login limited", &latchkey.RateLimitedError{RetryAfter: 3 * time.Second, Attempts: "login attempts"}, 429, "rate_limited", "Too many login attempts. Try again later."},
		{"register limited", &latchkey.RateLimitedError{RetryAfter: 3 * time.Second, Attempts: "registrations from this address"}, 429, "rate_limited", "Too many registrations from this address. Try again later."},
		{"busy", latchkey.ErrBusy, 429, "rate_limited", "The server is busy checking passwords. Try again shortly."},
		{"credentials", latchkey.ErrInvalidCredentials, 401, "invalid_credentials", "Invalid username or password."},
		{"grant", latchkey.ErrInvalidGrant, 401, "invalid_grant", "The refresh token is invalid, expired or revoked."},
		{"registration closed", latchkey.ErrRegistrationClosed, 403, "forbidden", "Registration is closed on this server."},
		{"not admin", latchkey.ErrNotAdmin, 403, "insufficient_role", "This action requires the admin role."},
		{"self lockout", fmt.Errorf("update user: %w", latchkey.ErrSelfLockout), 403, "forbidden", "Admins cannot demote or disable themselves."},
		{"generic forbidden", latchkey.ErrForbidden, 403, "forbidden", "This action is not allowed."},
		{"username taken", fmt.Errorf("create user: %w", latchkey.ErrUsernameTaken), 409, "conflict", "That username is taken."},
		{"generic conflict", latchkey.ErrConflict, 409, "conflict", "The request conflicts with the current state. Try again."},
		{"user not found", fmt.Errorf("update user: %w", latchkey.ErrUserNotFound), 404, "not_found", "No such user."},
		{"generic not found", latchkey.ErrNotFound, 404, "not_found", "Not found."},
		{"unknown", errors.New("disk on fire at /var/lib/latchkey"), 500, "server_error", "The server could not complete the request."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := errorFor(tc.err)
			if e.Status != tc.status || e.Code != tc.code || e.Description != tc.desc {
				t.Errorf("errorFor(%v) = %d %s %q; want %d %s %q", tc.err, e.Status, e.Code, e.Description, tc.status, tc.code, tc.desc)
			}
		})
	}
}

// TestHandleLogsOnlyServerErrors checks the one place handler errors are
// written: a client error is answered and not logged, a server error is
// answered without its cause and logged with it.
func TestHandleLogsOnlyServerErrors(t *testing.T) {
	var log strings.Builder
	logger := slog.New(slog.NewTextHandler(&log, nil))
	serve := func(err error) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		handle(logger, func(http.ResponseWriter, *http.Request) error { return err }).
			ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		return rec
	}

	rec := serve(latchkey.ErrInvalidCredentials)
	if rec.Code != 401 || log.Len() != 0 {
		t.Errorf("client error: status %d, log %q; want 401 and no log line", rec.Code, log.String())
	}

	rec = serve(fmt.Errorf("login: %w", io.ErrUnexpectedEOF))
	body := rec.Body.String()
	if rec.Code != 500 || strings.Contains(body, "EOF") {
		t.Errorf("server error: status %d, body %s; want 500 without the cause", rec.Code, body)
	}
	if !strings.Contains(log.String(), "unexpected EOF") || !strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("server error log = %q; want one ERROR line with the cause", log.String())
	}

	rec = serve(&latchkey.RateLimitedError{RetryAfter: 1500 * time.Millisecond})
	if got := rec.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q; want 2 (rounded up)", got)
	}
}

// TestClientGoneIsNotAServerError: a request whose client disconnected
// fails with the context's error; nothing is logged at ERROR for it.
func TestClientGoneIsNotAServerError(t *testing.T) {
	var log strings.Builder
	logger := slog.New(slog.NewTextHandler(&log, nil))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequest("POST", "/login", nil).WithContext(ctx)
	handle(logger, func(http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("login: %w", ctx.Err())
	}).ServeHTTP(httptest.NewRecorder(), req)
	if log.Len() != 0 {
		t.Errorf("log = %q; want nothing at INFO or above", log.String())
	}

	// The same error while the client is still there is the server's.
	log.Reset()
	handle(logger, func(http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("login: %w", context.Canceled)
	}).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil))
	if !strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("log = %q; want an ERROR line", log.String())
	}
}
