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
	"github.com/latchkey-dev/latchkey/token/revocation"
)

func handleListBooks(store Store) handlerFunc {
	if js, ok := store.(jsonLister); ok {
		// The stores of this package keep the list encoded (listCache):
		// the same bytes encode would write.
		return func(w http.ResponseWriter, r *http.Request) error {
			body, err := js.listBooksJSON(r.Context())
			if err != nil {
				return err
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.Write(body)
			return nil
		}
	}
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

// handleReadyz answers 200 when the database, the key source (ready, if
// set) and the revocation feed (feed, if set) all answer, else 503. The
// feed counts as answering once it has a list, and for as long as its
// follower's MaxStale allows (by default, for ever: see the revocation
// package). The body shows the feed's age and whether it is stale, 200 or
// 503 alike; it does not say which check failed; the log does.
func handleReadyz(store Store, ready func(context.Context) error, feed *revocation.Follower, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		err := store.Ping(ctx)
		if err == nil && ready != nil {
			err = ready(ctx)
		}
		if err == nil && feed != nil {
			err = feed.Ready(ctx)
		}
		body := map[string]any{"status": "ok"}
		if feed != nil {
			body["revocations"] = feedStatus(feed.Status())
		}
		if err != nil {
			logger.WarnContext(r.Context(), "books: not ready", "err", err)
			// Every error response carries the contract's error body; "status"
			// stays for health checkers that read only that.
			body["status"], body["error"] = "unavailable", "server_error"
			body["error_description"] = "The database, the key source or the revocation feed does not answer."
			encode(w, http.StatusServiceUnavailable, body)
			return
		}
		encode(w, http.StatusOK, body)
	})
}

// feedJSON is the revocation feed's part of /readyz.
type feedJSON struct {
	// Loaded is false until the first list arrives; until then every
	// token is answered 500, as before the first JWKS.
	Loaded bool `json:"loaded"`
	// AgeSeconds is the time since the feed last answered (a list or a
	// 304); absent before the first list.
	AgeSeconds *float64 `json:"ageSeconds,omitempty"`
	// Stale: the feed has not answered for several polls, so a revocation
	// made now may take longer than the contract's poll interval plus one
	// second to be refused here.
	Stale bool `json:"stale"`
	// FailingClosed: the list is older than the follower's MaxStale and it
	// was told to refuse every token meanwhile.
	FailingClosed bool `json:"failingClosed"`
	Sessions      int  `json:"sessions"`
	Users         int  `json:"users"`
}

func feedStatus(st revocation.Status) feedJSON {
	out := feedJSON{Loaded: st.Loaded, Stale: st.Stale, FailingClosed: st.FailingClosed, Sessions: st.Sessions, Users: st.Users}
	if st.Loaded {
		// Milliseconds are all a reader of /readyz can use, and divide
		// into a float that prints as written (2.405, not 2.4050000000000002).
		age := float64(st.Age.Round(time.Millisecond).Milliseconds()) / 1000
		out.AgeSeconds = &age
	}
	return out
}

//go:embed openapi.json
var openAPI []byte

func handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
}
