package server

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
)

// Error is an answer for the client: the contract's status, error code and
// a description for a person, plus the cause, which only the log sees.
type Error struct {
	Status      int
	Code        string
	Description string
	RetryAfter  time.Duration
	// MFAToken is the mfa_required answer's token for the second step.
	MFAToken string
	Cause    error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Cause.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

func badRequest(format string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: format}
}

// errorFor is the one table from domain errors to the wire contract. An
// error it does not know is a 500 whose description says nothing of the
// cause.
func errorFor(err error) *Error {
	var (
		apiErr *Error
		verr   *latchkey.ValidationError
		rlErr  *latchkey.RateLimitedError
		mfaErr *latchkey.MFARequiredError
	)
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &verr):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_request", Description: verr.Error(), Cause: err}
	case errors.As(err, &rlErr):
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Description: "Too many " + rlErr.Attempts + ". Try again later.", RetryAfter: rlErr.RetryAfter, Cause: err}
	case errors.Is(err, latchkey.ErrBusy):
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
			Description: "The server is busy checking passwords. Try again shortly.", RetryAfter: time.Second, Cause: err}
	case errors.As(err, &mfaErr):
		return &Error{Status: http.StatusUnauthorized, Code: "mfa_required",
			Description: "The password is right; now enter the code from your authenticator app.", MFAToken: mfaErr.Token, Cause: err}
	case errors.Is(err, latchkey.ErrInvalidCode): // before the ErrInvalidCredentials it wraps
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_credentials", Description: "The code is wrong, expired or already used.", Cause: err}
	case errors.Is(err, latchkey.ErrInvalidCredentials):
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_credentials", Description: "Invalid username or password.", Cause: err}
	case errors.Is(err, latchkey.ErrInvalidMFAToken):
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_grant", Description: "This sign-in step expired or was already used. Sign in with your password again.", Cause: err}
	case errors.Is(err, latchkey.ErrInvalidGrant):
		return &Error{Status: http.StatusUnauthorized, Code: "invalid_grant", Description: "The refresh token is invalid, expired or revoked.", Cause: err}
	case errors.Is(err, latchkey.ErrRegistrationClosed):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Description: "Registration is closed on this server.", Cause: err}
	case errors.Is(err, latchkey.ErrNotAdmin):
		return &Error{Status: http.StatusForbidden, Code: "insufficient_role", Description: "This action requires the admin role.", Cause: err}
	// The specific errors come before the generic ones they wrap.
	case errors.Is(err, latchkey.ErrSelfLockout):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Description: "Admins cannot demote or disable themselves.", Cause: err}
	case errors.Is(err, latchkey.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Description: "This action is not allowed.", Cause: err}
	case errors.Is(err, latchkey.ErrUsernameTaken):
		return &Error{Status: http.StatusConflict, Code: "conflict", Description: "That username is taken.", Cause: err}
	case errors.Is(err, latchkey.ErrTOTPEnabled):
		return &Error{Status: http.StatusConflict, Code: "conflict", Description: "Two-step sign-in is already on. Turn it off first to enrol a new device.", Cause: err}
	case errors.Is(err, latchkey.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Description: "The request conflicts with the current state. Try again.", Cause: err}
	case errors.Is(err, latchkey.ErrUserNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "No such user.", Cause: err}
	case errors.Is(err, latchkey.ErrSessionNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "No such session.", Cause: err}
	case errors.Is(err, latchkey.ErrTOTPNotEnabled):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "Two-step sign-in is not on.", Cause: err}
	case errors.Is(err, latchkey.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "Not found.", Cause: err}
	default:
		return &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "The server could not complete the request.", Cause: err}
	}
}

// handlerFunc is a handler whose failure is a value: it returns the error
// instead of writing it, and handle writes it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle is the one place where server handlers' errors become responses
// and where unexpected ones are logged.
func handle(logger *slog.Logger, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, logger, err)
		}
	})
}

// writeError answers with err mapped through errorFor. Server errors are
// logged with their cause; client errors are not worth a log line beyond
// the access log. A request whose client went away mid-way fails because
// its context ended (drivers word that differently: context.Canceled,
// "interrupted"): that is the client's doing, not the server's, so it is
// not logged as an error (a load tool's shutdown would otherwise write one
// ERROR line per open connection).
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	if r.Context().Err() != nil {
		logger.DebugContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path)
		return
	}
	e := errorFor(err)
	if e.Status >= 500 {
		logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", e.Cause)
	}
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if e.MFAToken != "" {
		w.Header().Set("Cache-Control", "no-store")
		encode(w, e.Status, struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
			MFAToken    string `json:"mfaToken"`
		}{e.Code, e.Description, e.MFAToken})
		return
	}
	bearer.WriteError(w, e.Status, e.Code, e.Description)
}
