// Package server is the auth server's HTTP surface: the contract's
// endpoints on top of latchkey.Service, JSON in and out with the contract's
// limits, and one table that turns errors into statuses.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/metrics"
	"github.com/latchkey-dev/latchkey/token"
)

// Config configures the auth server's handler.
type Config struct {
	// Service is the domain; its issuer and audience are the server's
	// (the iss of issued tokens is the base URL of discovery).
	Service *latchkey.Service
	// Keys signs (through the Service) and publishes; the server's own
	// verifier and JWKS follow its rotations.
	Keys   *latchkey.KeyRing
	Logger *slog.Logger
	// Metrics, when set, counts requests by route and status and refused
	// tokens by reason (see package metrics).
	Metrics *metrics.Metrics
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// (LATCHKEY_TRUSTED_PROXIES); empty, the client is the TCP peer.
	TrustedProxies []netip.Prefix

	// BooksURL is where the sign-in page finds the books server
	// (LATCHKEY_BOOKS_URL); the page's connect-src names its origin. Empty,
	// the page has no books to show.
	BooksURL string
	// CORSOrigins are the browser origins, besides the issuer's own, that
	// host apps using this server (LATCHKEY_CORS_ORIGINS): they pass cookie
	// mode's CSRF check and get CORS answers. "*" and "null" are refused.
	CORSOrigins []string
	// CookieSecure sets Secure on the refresh cookie for an http issuer too
	// (LATCHKEY_COOKIE_SECURE); an https issuer always gets it.
	CookieSecure bool
}

// New returns the auth server's http.Handler, with every route of the
// contract, request logging and panic recovery.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Service == nil:
		return nil, errors.New("server: Config.Service is required")
	case cfg.Keys == nil:
		return nil, errors.New("server: Config.Keys is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	web, err := newBrowser(cfg)
	if err != nil {
		return nil, err
	}
	verifier := token.NewVerifier(cfg.Keys,
		token.WithIssuer(cfg.Service.Issuer()), token.WithAudience(cfg.Service.Audience()),
		token.WithNow(cfg.Service.Now))

	mux := http.NewServeMux()
	for _, rt := range routes(cfg, verifier) {
		mux.Handle(exactRoot(rt.pattern), rt.handler)
	}
	// The mux's own 404 and 405 answers get the contract's JSON body.
	var h http.Handler = web.withCORS(bearer.MuxErrors(mux))
	if cfg.Metrics != nil {
		h = cfg.Metrics.HTTP("auth", h)
	}
	return AccessLog(cfg.Logger, cfg.TrustedProxies, h), nil
}

// exactRoot makes the contract's "GET /", the sign-in page, match the root
// alone: to ServeMux a pattern ending in "/" is a whole subtree, which
// would answer every unknown GET path with the page instead of a 404.
func exactRoot(pattern string) string {
	if strings.HasSuffix(pattern, " /") {
		return pattern + "{$}"
	}
	return pattern
}

// ready is what /readyz asks.
type readiness func(ctx context.Context) error
