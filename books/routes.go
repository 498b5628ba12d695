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
	return []route{
		{"GET", "/books", anyToken, handleListBooks(s, log)},
		{"GET", "/books/{id}", anyToken, handleGetBook(s, log)},
		{"POST", "/books", adminOnly, handleCreateBook(s, log)},
		{"PUT", "/books/{id}", adminOnly, handleUpdateBook(s, log)},
		{"DELETE", "/books/{id}", adminOnly, handleDeleteBook(s, log)},
		{"GET", "/articles", anyToken, handleListArticles(s, log)},
		{"POST", "/articles", anyToken, handleCreateArticle(s, log)},
		{"GET", "/healthz", public, handleHealthz()},
		{"GET", "/readyz", public, handleReadyz(s, cfg.Ready, log)},
		{"GET", "/openapi.json", public, handleOpenAPI()},
	}
}

// addRoutes registers every route behind the authentication its access
// asks for. Protection is decided here, in one place, not in handlers.
func addRoutes(mux *http.ServeMux, cfg Config) {
	requireToken := bearer.Require(cfg.Verifier, bearer.WithLogger(cfg.Logger))
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
