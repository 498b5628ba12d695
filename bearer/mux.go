package bearer

import "net/http"

// MuxErrors returns a handler that serves mux, except that the answers the
// mux gives by itself carry the JSON error body of [WriteError] instead of
// net/http's plain text: a 404 not_found for a path no pattern matches, and
// a 405 method_not_allowed, with the mux's Allow header, for a method the
// path does not take. A resource server's clients then read every error the
// same way, whether it came from a handler, from Require or from the mux.
//
// A request that matches a pattern reaches its handler with the original
// ResponseWriter: a handler's own 404 (no such book) is left alone, and
// nothing is wrapped on the hot path, where a wrapper would hide the
// writer's optional interfaces (such as the one http.MaxBytesReader uses to
// close the connection after an oversized body).
func MuxErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			// Only the mux's own ServeHTTP sets the path values ({id})
			// that handlers read, so h is not called directly.
			mux.ServeHTTP(w, r)
			return
		}
		// No pattern: h is the mux's own 404, 405 or redirect to the
		// cleaned path. Which one is known only by running it.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusNotFound:
			WriteError(w, http.StatusNotFound, "not_found", "There is nothing at this path.")
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", probe.header.Get("Allow"))
			WriteError(w, http.StatusMethodNotAllowed, "method_not_allowed",
				"This path does not accept "+r.Method+"; the Allow header lists the methods it does.")
		default:
			// The mux's handlers have no side effects, so the redirect is
			// served again, for real, with its body.
			h.ServeHTTP(w, r)
		}
	})
}

// statusProbe records the status and headers a handler answers with and
// drops its body.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (p *statusProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}
