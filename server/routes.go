package server

import (
	"net/http"
	"time"

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
	h := func(fn handlerFunc) http.Handler { return handle(logger, fn) }
	// The auth server's own Bearer endpoints also check that the token's
	// session is still live, so logout-all takes effect here at once.
	opts := []bearer.Option{bearer.WithLogger(logger), bearer.WithCheck(sessionCheck(svc))}
	if cfg.Metrics != nil {
		opts = append(opts, cfg.Metrics.Refusals("auth"))
	}
	authed := bearer.Require(verifier, opts...)
	// Admin routes check the role in the token first (a member's token is
	// refused without a database read), then the Service checks it again
	// in the database, so a demoted admin loses access at once.
	admin := func(fn handlerFunc) http.Handler { return authed(bearer.RequireRole("admin")(h(fn))) }
	jwks, discovery := wellKnown(cfg)
	// Cookie mode and the sign-in page (browser.go, session.go): every
	// /session/* request passes the CSRF check before anything else.
	web := mustBrowser(cfg)
	return []route{
		{"POST /register", h(handleRegister(svc))},
		{"POST /login", h(handleLogin(svc))},
		{"POST /token", h(handleToken(svc))},
		{"POST /logout", h(handleLogout(svc))},
		{"DELETE /logout", h(handleLogout(svc))},
		{"POST /logout/all", authed(h(handleLogoutAll(svc)))},
		{"GET /me", authed(h(handleMe(svc)))},
		{"POST /login/mfa", h(handleLoginMFA(svc))},
		{"POST /me/password", authed(h(handleChangePassword(svc)))},
		{"GET /me/sessions", authed(h(handleMySessions(svc)))},
		{"DELETE /me/sessions/{id}", authed(h(handleEndMySession(svc)))},
		{"GET /me/totp", authed(h(handleTOTPStatus(svc)))},
		{"POST /me/totp", authed(h(handleStartTOTP(svc)))},
		{"POST /me/totp/confirm", authed(h(handleConfirmTOTP(svc)))},
		{"DELETE /me/totp", authed(h(handleDisableTOTP(svc)))},
		{"GET /admin/users", admin(handleAdminListUsers(svc))},
		{"POST /admin/users", admin(handleAdminCreateUser(svc))},
		{"PATCH /admin/users/{id}", admin(handleAdminUpdateUser(svc))},
		{"GET /admin/users/{id}/sessions", admin(handleAdminListSessions(svc))},
		{"DELETE /admin/users/{id}/sessions", admin(handleAdminRevokeSessions(svc))},
		{"POST /admin/users/{id}/password", admin(handleAdminResetPassword(svc))},
		{"DELETE /admin/users/{id}/totp", admin(handleAdminRemoveTOTP(svc))},
		{"GET /admin/audit", admin(handleAdminAudit(svc))},
		{"GET /.well-known/jwks.json", jwks},
		{"GET /.well-known/openid-configuration", discovery},
		{"GET /.well-known/revocations", h(handleRevocations(&feed{svc: svc, now: time.Now}))},
		{"GET /healthz", handleHealthz()},
		{"GET /readyz", handleReadyz(svc.Ready, logger)},
		{"GET /openapi.json", handleOpenAPI()},
		{"GET /", web.handlePage()},
		{"GET /web/{file}", h(web.handleAsset())},
		{"POST /session/login", h(web.csrf(web.handleSessionLogin()))},
		{"POST /session/login/mfa", h(web.csrf(web.handleSessionLoginMFA()))},
		{"POST /session/refresh", h(web.csrf(web.handleSessionRefresh()))},
		{"POST /session/logout", h(web.csrf(web.handleSessionLogout()))},
	}
}
