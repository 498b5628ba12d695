package server

import (
	"net/http"
	"strings"
)

// corsMaxAge is how long (seconds) a browser may cache a preflight answer.
const corsMaxAge = "600"

// withCORS answers cross-origin requests from Config.CORSOrigins, the
// origins that host a single-page app of their own, and from nobody else:
// any other Origin gets no CORS header at all, and the page served here
// needs none, being same-origin.
//
// Two kinds of answer:
//   - /session/* is cookie mode, so it allows credentials (the browser then
//     sends and stores the refresh cookie) and the X-Latchkey-CSRF header,
//     which csrf requires;
//   - every other endpoint is a JSON or Bearer one, so it allows the
//     Authorization header and never credentials: no cookie is read there.
//
// Retry-After and WWW-Authenticate are exposed, so that an app can say how
// long to wait after a 429 and why a token was refused.
func (b *browser) withCORS(next http.Handler) http.Handler {
	if len(b.cors) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Whether the answer carries CORS headers depends on Origin, so a
		// cache must key on it, for allowed and refused origins alike.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if !b.cors[origin] {
			next.ServeHTTP(w, r)
			return
		}
		session := strings.HasPrefix(r.URL.Path, "/session/")
		h.Set("Access-Control-Allow-Origin", origin)
		if session {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if session {
				h.Set("Access-Control-Allow-Methods", "POST")
				h.Set("Access-Control-Allow-Headers", "Content-Type, "+csrfHeader)
			} else {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			}
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate")
		next.ServeHTTP(w, r)
	})
}
