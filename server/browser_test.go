package server

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// wantPageHeaders checks the contract's security headers on the page and
// on what it loads.
func wantPageHeaders(tb testing.TB, h http.Header, connect string) {
	tb.Helper()
	want := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src " + connect +
		"; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if got := h.Get("Content-Security-Policy"); got != want {
		tb.Errorf("Content-Security-Policy =\n  %q\nwant\n  %q", got, want)
	}
	for name, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	} {
		if got := h.Get(name); got != want {
			tb.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestPage(t *testing.T) {
	s := newBrowserServer(t, browserOpts{})
	r := s.do(t, "GET", "/", nil)
	if r.status != 200 || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", r.status, r.header.Get("Content-Type"))
	}
	wantPageHeaders(t, r.header, testOrigin+" http://books.test:4000")
	html := string(r.body)
	for _, want := range []string{
		`data-auth-url="http://auth.test"`, `data-auth-origin="http://auth.test"`, `data-books-url="http://books.test:4000"`,
		`<script type="module" src="web/app.js"></script>`, `href="web/style.css"`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// What the policy forbids, the page must not need: no inline script,
	// no style attribute, no event handler attribute.
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(\s[^>]*)?>[^<]+</script>`),
		regexp.MustCompile(`<script(?:\s[^>]*)?>`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)javascript:`),
		regexp.MustCompile(`(?i)(src|href)="(https?:)?//`),
	} {
		for _, m := range bad.FindAllString(html, -1) {
			if m == `<script type="module" src="web/app.js">` {
				continue
			}
			t.Errorf("the page has %q, which the policy would block or which loads from elsewhere", m)
		}
	}

	t.Run("ETag revalidation", func(t *testing.T) {
		etag := r.header.Get("ETag")
		if etag == "" || r.header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("ETag %q, Cache-Control %q", etag, r.header.Get("Cache-Control"))
		}
		if again := s.do(t, "GET", "/", nil, "If-None-Match", etag); again.status != http.StatusNotModified {
			t.Errorf("If-None-Match: %d, want 304", again.status)
		}
	})
	t.Run("unknown paths stay 404", func(t *testing.T) {
		wantError(t, s.do(t, "GET", "/index.html", nil), 404, "not_found")
		wantError(t, s.do(t, "GET", "/session", nil), 404, "not_found")
		wantError(t, s.do(t, "GET", "/web/../server.go", nil), 404, "not_found")
		wantError(t, s.do(t, "POST", "/", nil), 405, "method_not_allowed")
		wantError(t, s.do(t, "GET", "/session/login", nil), 405, "method_not_allowed")
	})
	t.Run("no books server", func(t *testing.T) {
		s := newBrowserServer(t, browserOpts{server: func(c *Config) { c.BooksURL = "" }})
		r := s.do(t, "GET", "/", nil)
		wantPageHeaders(t, r.header, testOrigin)
		if !strings.Contains(string(r.body), `data-books-url=""`) {
			t.Error("the page names a books server")
		}
	})
	t.Run("books on the auth origin", func(t *testing.T) {
		s := newBrowserServer(t, browserOpts{server: func(c *Config) { c.BooksURL = "http://auth.test/books-api" }})
		wantPageHeaders(t, s.do(t, "GET", "/", nil).header, testOrigin)
	})
}

func TestPageAssets(t *testing.T) {
	s := newBrowserServer(t, browserOpts{})
	for file, ct := range map[string]string{
		"app.js":      "text/javascript; charset=utf-8",
		"style.css":   "text/css; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		t.Run(file, func(t *testing.T) {
			r := s.do(t, "GET", "/web/"+file, nil)
			if r.status != 200 || r.header.Get("Content-Type") != ct || len(r.body) == 0 {
				t.Fatalf("%d %q, %d bytes", r.status, r.header.Get("Content-Type"), len(r.body))
			}
			wantPageHeaders(t, r.header, testOrigin+" http://books.test:4000")
		})
	}
	wantError(t, s.do(t, "GET", "/web/index.html", nil), 404, "not_found")
	wantError(t, s.do(t, "GET", "/web/nope.js", nil), 404, "not_found")

	// The script keeps tokens out of every place another script, or the
	// next user of the machine, could read them, and builds the page
	// without HTML sinks. The browser tests prove the behaviour; this
	// keeps the source from drifting towards it.
	js := string(s.do(t, "GET", "/web/app.js", nil).body)
	for _, bad := range []string{"localStorage", "sessionStorage", "document.cookie", "innerHTML", "outerHTML",
		"insertAdjacentHTML", "document.write", "eval(", "new Function", "indexedDB"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	for _, want := range []string{"'X-Latchkey-CSRF'", "navigator.locks", "BroadcastChannel", "/session/refresh"} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
}

func TestAuthCORS(t *testing.T) {
	s := newBrowserServer(t, browserOpts{})
	preflight := func(path, method, headers string, origin string) response {
		return s.do(t, "OPTIONS", path, nil, "Origin", origin,
			"Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
	}
	t.Run("app origin, cookie mode", func(t *testing.T) {
		r := preflight("/session/refresh", "POST", "content-type, x-latchkey-csrf", testSPA)
		if r.status != http.StatusNoContent {
			t.Fatalf("preflight: %d %s", r.status, r.body)
		}
		for name, want := range map[string]string{
			"Access-Control-Allow-Origin":      testSPA,
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "POST",
			"Access-Control-Allow-Headers":     "Content-Type, X-Latchkey-CSRF",
			"Access-Control-Max-Age":           "600",
		} {
			if got := r.header.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if !hasVary(r.header, "Origin") {
			t.Errorf("Vary = %q", r.header.Values("Vary"))
		}
		r = s.do(t, "POST", "/session/login", map[string]string{"username": "john", "password": "password123admin"},
			"Origin", testSPA, "X-Latchkey-CSRF", "1")
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != testSPA || r.header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("login from the app: %d, CORS %q/%q", r.status, r.header.Get("Access-Control-Allow-Origin"), r.header.Get("Access-Control-Allow-Credentials"))
		}
	})
	t.Run("app origin, Bearer endpoint", func(t *testing.T) {
		r := preflight("/me", "GET", "authorization", testSPA)
		if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Headers") != "Authorization, Content-Type" {
			t.Fatalf("preflight: %d %q", r.status, r.header.Get("Access-Control-Allow-Headers"))
		}
		if got := r.header.Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("a Bearer endpoint allows credentials: %q", got)
		}
		r = s.do(t, "GET", "/me", nil, "Origin", testSPA)
		wantError(t, r, 401, "invalid_token")
		if r.header.Get("Access-Control-Allow-Origin") != testSPA || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Errorf("the app cannot read the 401: %v", r.header)
		}
		r = s.do(t, "POST", "/login", map[string]string{"username": "john", "password": "password123wrong"}, "Origin", testSPA)
		if !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "Retry-After") {
			t.Errorf("Retry-After is not exposed: %q", r.header.Get("Access-Control-Expose-Headers"))
		}
	})
	for _, origin := range []string{"https://evil.example", "null", "https://app.example.com.evil.example", "http://app.example.com"} {
		t.Run("refused "+origin, func(t *testing.T) {
			r := preflight("/session/refresh", "POST", "x-latchkey-csrf", origin)
			mustNoCORS(t, r.header)
			wantError(t, r, 405, "method_not_allowed")
			r = s.do(t, "GET", "/healthz", nil, "Origin", origin)
			mustNoCORS(t, r.header)
			if !hasVary(r.header, "Origin") {
				t.Error("no Vary: Origin on an answer that depends on it")
			}
		})
	}
	t.Run("the page's own origin needs none", func(t *testing.T) {
		mustNoCORS(t, s.do(t, "GET", "/healthz", nil, "Origin", testOrigin).header)
	})
	t.Run("no app origin configured", func(t *testing.T) {
		s := newBrowserServer(t, browserOpts{server: func(c *Config) { c.CORSOrigins = nil }})
		r := s.do(t, "OPTIONS", "/session/refresh", nil, "Origin", testSPA, "Access-Control-Request-Method", "POST")
		mustNoCORS(t, r.header)
		if hasVary(r.header, "Origin") {
			t.Error("Vary: Origin without any CORS")
		}
	})
}

func hasVary(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

func mustNoCORS(tb testing.TB, h http.Header) {
	tb.Helper()
	for name := range h {
		if strings.HasPrefix(name, "Access-Control-") {
			tb.Errorf("CORS header %s: %q", name, h.Get(name))
		}
	}
}

func TestBrowserConfigRefused(t *testing.T) {
	e := latchkeytest.New(t, latchkeytest.Options{})
	base := Config{Service: e.Service, Keys: e.Keys}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"wildcard origin", func(c *Config) { c.CORSOrigins = []string{"*"} }},
		{"null origin", func(c *Config) { c.CORSOrigins = []string{"null"} }},
		{"origin with a path", func(c *Config) { c.CORSOrigins = []string{"https://app.example.com/app"} }},
		{"origin not http", func(c *Config) { c.CORSOrigins = []string{"ftp://app.example.com"} }},
		{"origin without a host", func(c *Config) { c.CORSOrigins = []string{"app.example.com"} }},
		{"books URL not http", func(c *Config) { c.BooksURL = "books:4000" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			if _, err := New(cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	t.Run("issuer that is not a URL", func(t *testing.T) {
		e := latchkeytest.New(t, latchkeytest.Options{Config: func(c *latchkey.Config) { c.Issuer = "latchkey" }})
		if _, err := New(Config{Service: e.Service, Keys: e.Keys}); err == nil {
			t.Error("New accepted it")
		}
	})
}

func TestWebOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:3000":     "http://localhost:3000",
		"HTTPS://Auth.Example.COM/": "https://auth.example.com",
		"https://example.com:443":   "https://example.com",
		"http://example.com:80/x":   "http://example.com",
		"http://[::1]:3000":         "http://[::1]:3000",
		"http://[::1]":              "http://[::1]",
		"https://example.com/auth/": "https://example.com",
	} {
		if got, err := webOrigin(in, true); err != nil || got != want {
			t.Errorf("webOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
