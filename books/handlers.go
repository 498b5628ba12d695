package books

import (
	"context"
	_ "embed"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
)

func handleListBooks(store Store) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		list, err := store.ListBooks(r.Context())
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, list)
		return nil
	}
}

func handleGetBook(store Store) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := bookID(r)
		if err != nil {
			return err
		}
		b, err := store.Book(r.Context(), id)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, b)
		return nil
	}
}

func handleCreateBook(store Store) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req bookRequest
		if err := decode(w, r, &req); err != nil {
			return err
		}
		b, err := req.book()
		if err != nil {
			return err
		}
		if b, err = store.CreateBook(r.Context(), b); err != nil {
			return err
		}
		w.Header().Set("Location", "/books/"+strconv.FormatInt(b.ID, 10))
		encode(w, http.StatusCreated, b)
		return nil
	}
}

func handleUpdateBook(store Store) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		// The id is checked first: a PUT to a path that cannot name a book
		// is a 404 whatever its body.
		id, err := bookID(r)
		if err != nil {
			return err
		}
		var req bookRequest
		if err := decode(w, r, &req); err != nil {
			return err
		}
		b, err := req.book()
		if err != nil {
			return err
		}
		b.ID = id
		if b, err = store.UpdateBook(r.Context(), b); err != nil {
			return err
		}
		encode(w, http.StatusOK, b)
		return nil
	}
}

func handleDeleteBook(store Store) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := bookID(r)
		if err != nil {
			return err
		}
		if err := store.DeleteBook(r.Context(), id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// bookID reads the {id} path parameter. Only the canonical decimal form of
// a positive int64 names a book; anything else ("abc", "0", "-1", "+1",
// "007", too large) is a 404, because no book lives at that path.
func bookID(r *http.Request) (int64, error) {
	s := r.PathValue("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != s {
		return 0, ErrNotFound
	}
	return id, nil
}

func handleListArticles(store Store) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		claims, err := caller(w, r)
		if err != nil {
			return err
		}
		list, err := store.ListArticles(r.Context(), claims.Subject)
		if err != nil {
			return err
		}
		encode(w, http.StatusOK, list)
		return nil
	}
}

func handleCreateArticle(store Store) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		claims, err := caller(w, r)
		if err != nil {
			return err
		}
		var req articleRequest
		if err := decode(w, r, &req); err != nil {
			return err
		}
		a, err := req.article()
		if err != nil {
			return err
		}
		a.Author = claims.Username
		if a, err = store.CreateArticle(r.Context(), claims.Subject, a); err != nil {
			return err
		}
		encode(w, http.StatusCreated, a)
		return nil
	}
}

// caller returns the verified claims that bearer.Require put in the
// request's context. Articles belong to the token's subject, so a token
// without one cannot own anything and is refused as an invalid token.
func caller(w http.ResponseWriter, r *http.Request) (*token.Claims, error) {
	claims, ok := bearer.ClaimsFrom(r.Context())
	if !ok || claims.Subject == "" {
		const desc = "The access token does not name a user."
		w.Header().Set("WWW-Authenticate", bearer.Challenge("invalid_token", desc))
		return nil, &apiError{status: http.StatusUnauthorized, code: "invalid_token", description: desc}
	}
	return claims, nil
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// readyTimeout keeps /readyz quick when the database or key source hangs.
const readyTimeout = 2 * time.Second

// handleReadyz answers 200 when the key source (ready, if set) and the
// database both answer, else 503. The body does not say which failed; the
// log does.
func handleReadyz(store Store, ready func(context.Context) error, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		err := store.Ping(ctx)
		if err == nil && ready != nil {
			err = ready(ctx)
		}
		if err != nil {
			logger.WarnContext(r.Context(), "books: not ready", "err", err)
			// Every error response carries the contract's error body; "status"
			// stays for health checkers that read only that.
			encode(w, http.StatusServiceUnavailable, map[string]string{
				"status": "unavailable", "error": "server_error", "error_description": "The database or the key source does not answer.",
			})
			return
		}
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

//go:embed openapi.json
var openAPI []byte

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
}
