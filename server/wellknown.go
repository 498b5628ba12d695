package server

import (
	"context"
	_ "embed"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// wellKnown returns the JWKS and discovery handlers. Both documents are
// built once: they change only when the server restarts with other keys.
func wellKnown(cfg Config) (jwks, discovery http.Handler) {
	set := token.JWKS{Keys: []token.JWK{}}
	for _, k := range cfg.Keys.Verify {
		if k.Alg == token.HS256 {
			continue // shared secrets are never published
		}
		j, err := token.PublicJWK(k)
		if err != nil {
			continue
		}
		set.Keys = append(set.Keys, j)
	}
	jwksBody, _ := json.Marshal(set)

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
		"grant_types_supported":                 []string{"password", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"subject_types_supported":               []string{"public"},
		"response_types_supported":              []string{"token"},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "username", "role"},
	}
	discoBody, _ := json.Marshal(disco)

	static := func(body []byte) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Resource servers cache keys themselves and refetch on an
			// unknown kid, so a short public cache is safe.
			w.Header().Set("Cache-Control", "public, max-age=300")
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		})
	}
	return static(jwksBody), static(discoBody)
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
