package server

import (
	"net/http"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
)

// route is one line of the contract. The list is the single source for the
// mux and for the test that compares it with openapi.json.
type route struct {
	pattern string
	handler http.Handler
}

func routes(cfg Config, verifier *token.Verifier) []route {
	svc, logger := cfg.Service, cfg.Logger
	// The auth server's own Bearer endpoints also check that the token's
	// session is still live, so logout-all takes effect here at once.
	authed := bearer.Require(verifier, bearer.WithLogger(logger), bearer.WithCheck(sessionCheck(svc)))
	// Admin routes check the role in the token first (a member's token is
	// refused without a database read), then the Service checks it again
	// in the database, so a demoted admin loses access at once.
	admin := func(h http.Handler) http.Handler { return authed(bearer.RequireRole("admin")(h)) }
	jwks, discovery := wellKnown(cfg)
	return []route{
		{"POST /register", handleRegister(svc, logger)},
		{"POST /login", handleLogin(svc, logger)},
		{"POST /token", handleToken(svc, logger)},
		{"POST /logout", handleLogout(svc, logger)},
		{"DELETE /logout", handleLogout(svc, logger)},
		{"POST /logout/all", authed(handleLogoutAll(svc, logger))},
		{"GET /me", authed(handleMe(svc, logger))},
		{"GET /admin/users", admin(handleAdminListUsers(svc, logger))},
		{"POST /admin/users", admin(handleAdminCreateUser(svc, logger))},
		{"PATCH /admin/users/{id}", admin(handleAdminUpdateUser(svc, logger))},
		{"GET /admin/users/{id}/sessions", admin(handleAdminListSessions(svc, logger))},
		{"DELETE /admin/users/{id}/sessions", admin(handleAdminRevokeSessions(svc, logger))},
		{"GET /.well-known/jwks.json", jwks},
		{"GET /.well-known/openid-configuration", discovery},
		{"GET /healthz", handleHealthz()},
		{"GET /readyz", handleReadyz(svc.Ready, logger)},
		{"GET /openapi.json", handleOpenAPI()},
	}
}

func addRoutes(mux *http.ServeMux, cfg Config, verifier *token.Verifier) error {
	for _, rt := range routes(cfg, verifier) {
		mux.Handle(rt.pattern, rt.handler)
	}
	return nil
}
