package books

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/revocation"
)

// token.Verifier is the Verifier a deployment normally passes in Config.
var _ bearer.Verifier = (*token.Verifier)(nil)

// Config configures the books server's handler.
type Config struct {
	// Store holds books and articles: a SQLiteStore or a PostgresStore,
	// usually from Open. Required.
	Store Store
	// Verifier checks access tokens, usually a *token.Verifier over the
	// auth server's JWKS or a shared secret. Required.
	Verifier bearer.Verifier
	// CORSOrigins are the browser origins allowed to call the API, such as
	// "https://app.example.com"; "*" allows any origin. Empty: no CORS.
	CORSOrigins []string
	// Logger receives server errors and readiness failures; nil discards.
	// Requests are not logged here: that is the caller's middleware.
	Logger *slog.Logger
	// Ready reports whether the key source answers, for /readyz. Nil means
	// only the database is checked.
	Ready func(ctx context.Context) error
	// BearerOptions are added to the bearer middleware's, for example
	// bearer.WithRefusals to count refused tokens.
	BearerOptions []bearer.Option
	// Revocations is the revocation feed the Verifier follows: the
	// Follower given to token.WithRevocations, run by the caller. /readyz
	// waits for its first list and shows its age. Nil: no feed.
	Revocations *revocation.Follower
}

// New returns the books server's http.Handler with every route of the
// contract. Unknown paths and wrong methods get the contract's JSON
// errors, and CORS is answered for the configured origins only.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("books: Config.Store is required")
	case cfg.Verifier == nil:
		return nil, errors.New("books: Config.Verifier is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := newCORS(cfg.CORSOrigins)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	addRoutes(mux, cfg)
	return c.wrap(bearer.MuxErrors(mux)), nil
}

// cors answers cross-origin requests from the allowed origins. Browsers
// send the token in the Authorization header, never a cookie, so no
// credentials mode is needed and none is offered.
type cors struct {
	any     bool
	allowed map[string]bool
}

// corsMaxAge is how long (seconds) a browser may cache a preflight answer.
const corsMaxAge = "600"

func newCORS(origins []string) (*cors, error) {
	c := &cors{allowed: make(map[string]bool, len(origins))}
	for _, o := range origins {
		o = strings.TrimSpace(o)
		switch {
		case o == "":
			continue
		case o == "*":
			c.any = true
		case o == "null":
			// Sandboxed frames and file: pages all send "null"; allowing
			// it would allow every one of them.
			return nil, errors.New(`books: CORS origin "null" cannot be allowed`)
		default:
			c.allowed[strings.ToLower(strings.TrimRight(o, "/"))] = true
		}
	}
	return c, nil
}

func (c *cors) enabled() bool { return c.any || len(c.allowed) > 0 }

func (c *cors) wrap(next http.Handler) http.Handler {
	if !c.enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Whether the answer carries CORS headers depends on Origin, so
		// caches must key on it, for allowed and refused origins alike.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || origin == "null" || !(c.any || c.allowed[strings.ToLower(origin)]) {
			next.ServeHTTP(w, r)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// Let scripts read the new book's address and why a token failed.
		h.Set("Access-Control-Expose-Headers", "Location, WWW-Authenticate")
		next.ServeHTTP(w, r)
	})
}
