package server

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// The sign-in page and its assets are part of the binary: no CDN, no build
// step, nothing the page loads comes from anywhere but this server.
//
//go:embed web
var webFS embed.FS

var pageTemplate = template.Must(template.ParseFS(webFS, "web/index.html"))

// asset is one embedded file as it is served: its bytes, its type and an
// ETag, so that a browser revalidates with a 304 instead of a download.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

// browser is what the page, cookie mode and the auth server's CORS answers
// share, worked out once from Config.
type browser struct {
	svc    *latchkey.Service
	logger *slog.Logger

	// authURL is the issuer without a trailing slash: the page calls the
	// auth server there. authOrigin is its origin, the page's own.
	authURL, authOrigin string
	// allowed are the Origin values cookie mode accepts: authOrigin and
	// Config.CORSOrigins. cors are those of them that are other origins
	// than the page's, the ones that need CORS answers.
	allowed, cors map[string]bool

	cookiePath   string
	cookieSecure bool
	cookieMaxAge int // seconds

	csp    string
	page   asset
	assets map[string]asset
}

// newBrowser derives the browser settings from cfg. Its errors are
// configuration errors, which New reports before anything is served.
func newBrowser(cfg Config) (*browser, error) {
	issuer := cfg.Service.Issuer()
	authOrigin, err := webOrigin(issuer, true)
	if err != nil {
		return nil, fmt.Errorf("server: the issuer: %w", err)
	}
	u, _ := url.Parse(issuer) // webOrigin parsed it
	b := &browser{
		svc:        cfg.Service,
		logger:     cfg.Logger,
		authURL:    strings.TrimRight(issuer, "/"),
		authOrigin: authOrigin,
		allowed:    map[string]bool{authOrigin: true},
		cors:       map[string]bool{},
		// Under a path prefix (https://example.com/auth), the browser asks
		// for /auth/session/..., so the cookie's path follows the issuer's:
		// /session for an issuer without one, as the contract writes it.
		cookiePath:   strings.TrimRight(u.EscapedPath(), "/") + "/session",
		cookieSecure: u.Scheme == "https" || cfg.CookieSecure,
		// The contract makes Max-Age the refresh idle lifetime: the
		// Service's own, so the two cannot disagree.
		cookieMaxAge: int(cfg.Service.RefreshIdleTTL() / time.Second),
	}
	for _, o := range cfg.CORSOrigins {
		if strings.TrimSpace(o) == "" {
			continue
		}
		// A wildcard or "null" here would let any page, or every sandboxed
		// frame and file: page, pass the CSRF check with the user's cookie.
		if o == "*" || o == "null" {
			return nil, fmt.Errorf("server: CORS origin %q cannot be allowed: cookie mode trusts every origin it lists", o)
		}
		origin, err := webOrigin(o, false)
		if err != nil {
			return nil, fmt.Errorf("server: CORS origin: %w", err)
		}
		b.allowed[origin] = true
		if origin != authOrigin {
			b.cors[origin] = true
		}
	}

	connect := []string{authOrigin}
	var booksURL string
	if cfg.BooksURL != "" {
		booksOrigin, err := webOrigin(cfg.BooksURL, true)
		if err != nil {
			return nil, fmt.Errorf("server: the books URL: %w", err)
		}
		booksURL = strings.TrimRight(cfg.BooksURL, "/")
		if booksOrigin != authOrigin {
			connect = append(connect, booksOrigin)
		}
	}
	// No 'unsafe-inline' and no 'unsafe-eval': a script that an attacker
	// manages to put into the page does not run, and the page's own code
	// has no inline script or style for the policy to make room for.
	b.csp = strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:", // the TOTP enrolment's QR code arrives as a data: URL
		"connect-src " + strings.Join(connect, " "),
		"object-src 'none'",
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"form-action 'self'",
	}, "; ")

	var page bytes.Buffer
	if err := pageTemplate.Execute(&page, struct{ AuthURL, AuthOrigin, BooksURL string }{
		AuthURL: b.authURL, AuthOrigin: authOrigin, BooksURL: booksURL,
	}); err != nil {
		return nil, fmt.Errorf("server: render the sign-in page: %w", err)
	}
	b.page = newAsset(page.Bytes(), "text/html; charset=utf-8")
	b.assets = map[string]asset{}
	for name, ct := range map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"style.css":   "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		body, err := webFS.ReadFile("web/" + name)
		if err != nil {
			return nil, fmt.Errorf("server: embedded %s: %w", name, err)
		}
		b.assets[name] = newAsset(body, ct)
	}
	return b, nil
}

// mustBrowser is newBrowser for routes, which New calls only with a Config
// that newBrowser has already accepted.
func mustBrowser(cfg Config) *browser {
	b, err := newBrowser(cfg)
	if err != nil {
		panic(err)
	}
	return b
}

// webOrigin returns the origin of an http(s) URL as a browser writes it in
// the Origin header: scheme and host in lower case, the port only when it
// is not the scheme's default. withPath allows a path after the origin,
// as an issuer or the books URL may have; an origin in a list may not have
// one, since it would be ignored and its author misled.
func webOrigin(raw string, withPath bool) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.User != nil:
		return "", fmt.Errorf("%q is not an http(s) URL", raw)
	case !withPath && strings.TrimRight(u.Path, "/") != "", u.RawQuery != "", u.Fragment != "":
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", raw)
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		host = "[" + host + "]" // IPv6
	}
	return scheme + "://" + host, nil
}

// pageHeaders are the contract's security headers for the page and what it
// loads. X-Frame-Options repeats frame-ancestors for browsers that predate
// it; Cross-Origin-Opener-Policy keeps a page that opened this one from
// holding a handle on it.
func (b *browser) pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", b.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

func (b *browser) serve(w http.ResponseWriter, r *http.Request, a asset) {
	h := w.Header()
	b.pageHeaders(h)
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	// Revalidated on every load, so a new release is seen at once; the
	// ETag makes that a 304 when nothing changed.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// handlePage serves the sign-in page at GET /.
func (b *browser) handlePage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { b.serve(w, r, b.page) })
}

// handleAsset serves the page's script, style sheet and icon; any other
// name is the contract's 404.
func (b *browser) handleAsset() handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		a, ok := b.assets[r.PathValue("file")]
		if !ok {
			return &Error{Status: http.StatusNotFound, Code: "not_found", Description: "Not found."}
		}
		b.serve(w, r, a)
		return nil
	}
}
