package books

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/latchkey-dev/latchkey/bearer"
)

// apiError is an answer for the client: status, the contract's error code
// and a sentence for a person.
type apiError struct {
	status      int
	code        string
	description string
}

func (e *apiError) Error() string { return e.code + ": " + e.description }

func badRequest(description string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", description: description}
}

// errorFor is the one table from errors to the wire contract. An error it
// does not know is a 500 that says nothing of its cause.
func errorFor(err error) *apiError {
	if e, ok := errors.AsType[*apiError](err); ok {
		return e
	}
	if errors.Is(err, ErrNotFound) {
		return &apiError{status: http.StatusNotFound, code: "not_found", description: "There is no book with that id."}
	}
	return &apiError{status: http.StatusInternalServerError, code: "server_error",
		description: "The server could not complete the request."}
}

// writeError answers with err mapped through errorFor. Only server errors
// are logged, with their cause; the caller's access log covers the rest.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	e := errorFor(err)
	if e.status >= http.StatusInternalServerError {
		logger.ErrorContext(r.Context(), "books: request failed",
			"method", r.Method, "path", r.URL.Path, "err", err)
	}
	bearer.WriteError(w, e.status, e.code, e.description)
}

// handlerFunc is a handler whose failure is a value; handle turns it into
// the contract's error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func handle(logger *slog.Logger, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, logger, err)
		}
	})
}
