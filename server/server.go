// Package server is the auth server's HTTP surface: the contract's
// endpoints on top of latchkey.Service, JSON in and out with the contract's
// limits, and one table that turns errors into statuses.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/token"
)

// Config configures the auth server's handler.
type Config struct {
	// Service is the domain; its issuer and audience are the server's
	// (the iss of issued tokens is the base URL of discovery).
	Service *latchkey.Service
	Keys    *latchkey.Keys
	Logger  *slog.Logger
}

// New returns the auth server's http.Handler, with every route of the
// contract, request logging and panic recovery.
func New(cfg Config) (http.Handler, error) {
	switch {
	case cfg.Service == nil:
		return nil, errors.New("server: Config.Service is required")
	case cfg.Keys == nil || cfg.Keys.Signer == nil:
		return nil, errors.New("server: Config.Keys is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	verifier := token.NewVerifier(token.StaticKeys(cfg.Keys.Verify...),
		token.WithIssuer(cfg.Service.Issuer()), token.WithAudience(cfg.Service.Audience()))

	mux := http.NewServeMux()
	for _, rt := range routes(cfg, verifier) {
		mux.Handle(rt.pattern, rt.handler)
	}
	return AccessLog(cfg.Logger, jsonMuxErrors(mux)), nil
}

// clientOf describes the caller for rate limiting and session lists. The
// address is the TCP peer: headers such as X-Forwarded-For are set by the
// client unless a trusted proxy rewrites them, and trusting them by default
// would let anyone pick a fresh address per login attempt.
func clientOf(r *http.Request) latchkey.Client {
	return latchkey.Client{IP: remoteIP(r), UserAgent: r.UserAgent()}
}

func remoteIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// ready is what /readyz asks.
type readiness func(ctx context.Context) error
