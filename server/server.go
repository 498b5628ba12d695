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

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
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
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// (LATCHKEY_TRUSTED_PROXIES); empty, the client is the TCP peer.
	TrustedProxies []netip.Prefix
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
	verifier := token.NewVerifier(cfg.Keys,
		token.WithIssuer(cfg.Service.Issuer()), token.WithAudience(cfg.Service.Audience()))

	mux := http.NewServeMux()
	for _, rt := range routes(cfg, verifier) {
		mux.Handle(rt.pattern, rt.handler)
	}
	// The mux's own 404 and 405 answers get the contract's JSON body.
	return AccessLog(cfg.Logger, cfg.TrustedProxies, bearer.MuxErrors(mux)), nil
}

// ready is what /readyz asks.
type readiness func(ctx context.Context) error
