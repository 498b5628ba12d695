package books

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/bearer"
)

// access is who may call a route.
type access int

const (
	public    access = iota // anyone
	anyToken                // any valid access token
	adminOnly               // a valid access token with role "admin"
)

// adminRole is the role that may change books.
const adminRole = "admin"

// route is one line of the contract's books table. The list routes returns
// is the single source for the mux and for the test that compares it with
// openapi.json.
type route struct {
	method  string
	path    string
	access  access
	handler http.Handler
}

func routes(cfg Config) []route {
	s, log := cfg.Store, cfg.Logger
	h := func(fn handlerFunc) http.Handler { return handle(log, fn) }
	return []route{
		{"GET", "/books", anyToken, h(handleListBooks(s))},
		{"GET", "/books/{id}", anyToken, h(handleGetBook(s))},
		{"POST", "/books", adminOnly, h(handleCreateBook(s))},
		{"PUT", "/books/{id}", adminOnly, h(handleUpdateBook(s))},
		{"DELETE", "/books/{id}", adminOnly, h(handleDeleteBook(s))},
		{"GET", "/articles", anyToken, h(handleListArticles(s))},
		{"POST", "/articles", anyToken, h(handleCreateArticle(s))},
		{"GET", "/healthz", public, handleHealthz()},
		{"GET", "/readyz", public, handleReadyz(s, cfg.Ready, cfg.Revocations, log)},
		{"GET", "/openapi.json", public, handleOpenAPI()},
	}
}

// addRoutes registers every route behind the authentication its access
// asks for. Protection is decided here, in one place, not in handlers.
func addRoutes(mux *http.ServeMux, cfg Config) {
	requireToken := bearer.Require(cfg.Verifier, append([]bearer.Option{bearer.WithLogger(cfg.Logger)}, cfg.BearerOptions...)...)
	requireAdmin := bearer.RequireRole(adminRole, bearer.WithLogger(cfg.Logger))
	for _, rt := range routes(cfg) {
		h := rt.handler
		switch rt.access {
		case adminOnly:
			h = requireToken(requireAdmin(h))
		case anyToken:
			h = requireToken(h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
	}
}
