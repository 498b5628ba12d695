package server

import (
	"context"
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// wellKnown returns the JWKS and discovery handlers. Discovery is built
// once; the JWKS document is the key ring's, which changes with every
// rotation and is encoded once per change.
func wellKnown(cfg Config) (jwks, discovery http.Handler) {
	// The subset of OpenID Connect Discovery 1.0 that describes what this
	// server does; fields for flows it does not implement are left out
	// rather than filled with guesses.
	// No id token is issued, so no id-token algorithms are advertised; the
	// access tokens' algorithm is in each JWK's "alg".
	issuer := cfg.Service.Issuer()
	base := strings.TrimRight(issuer, "/")
	disco := map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"token_endpoint":                        base + "/token",
		"userinfo_endpoint":                     base + "/me",
		"revocation_endpoint":                   base + "/logout",
		"revocation_feed_uri":                   base + "/.well-known/revocations", // not OIDC: where verifiers follow revocations
		"grant_types_supported":                 []string{"password", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"token"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "username", "role", "gen"},
	}
	discoBody, _ := json.Marshal(disco)

	serve := func(body func() []byte) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Resource servers cache keys themselves and refetch on an
			// unknown kid and on a schedule. A shared cache may keep the
			// document ten seconds: a withdrawn key must not be served for
			// longer, while a planned rotation needs no freshness at all
			// (the next key is published a whole rotation ahead).
			w.Header().Set("Cache-Control", "public, max-age=10")
			w.Header().Set("Content-Type", "application/json")
			w.Write(body())
		})
	}
	return serve(cfg.Keys.JWKS), serve(func() []byte { return discoBody })
}

func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		encode(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// readyTimeout keeps /readyz answering quickly when the database hangs.
const readyTimeout = 2 * time.Second

func handleReadyz(ready readiness, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := ready(ctx); err != nil {
			logger.WarnContext(r.Context(), "not ready", "err", err)
			// Every error response carries the contract's error body; "status"
			// stays for health checkers that read only that.
			encode(w, http.StatusServiceUnavailable, map[string]string{
				"status": "unavailable", "error": "server_error", "error_description": "The database does not answer.",
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
