package server

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// The tests of the contract's "Browser sessions (cookie mode)" section,
// over real HTTP. A browser is played by hand: each request carries the
// Origin, X-Latchkey-CSRF and Cookie headers a test chooses, so that every
// failure of the CSRF rules can be sent on purpose.

const (
	testIssuer   = "http://auth.test"
	testOrigin   = "http://auth.test" // the issuer's origin: the page's own
	testSPA      = "https://app.example.com"
	testBooksURL = "http://books.test:4000"
)

type browserOpts struct {
	issuer  string // default testIssuer
	mod     func(*latchkey.Config)
	server  func(*Config)
	clocked bool // a Clock the test moves, instead of the wall clock
}

type browserServer struct {
	*testServer
	env *latchkeytest.Env
}

// newBrowserServer is the auth server with cookie mode configured as
// cmd/latchkey configures it: a books URL, an app on another origin
// allowed, and the cookie's Max-Age from the Service's idle lifetime.
func newBrowserServer(tb testing.TB, o browserOpts) *browserServer {
	tb.Helper()
	issuer := o.issuer
	if issuer == "" {
		issuer = testIssuer
	}
	e := latchkeytest.New(tb, latchkeytest.Options{RealTime: !o.clocked, Config: func(c *latchkey.Config) {
		c.Issuer = issuer
		c.RefreshIdleTTL = 6 * time.Hour
		if o.mod != nil {
			o.mod(c)
		}
	}})
	cfg := Config{Service: e.Service, Keys: e.Keys, BooksURL: testBooksURL,
		CORSOrigins: []string{testOrigin, testSPA}}
	if o.server != nil {
		o.server(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	e.MustUser(tb, "john", "password123admin", latchkey.RoleAdmin)
	return &browserServer{testServer: &testServer{Server: srv, store: e.Store, svc: e.Service, keys: e.Keys}, env: e}
}

// page are the headers the sign-in page's own requests carry.
func page(extra ...string) []string {
	return append([]string{"Origin", testOrigin, "X-Latchkey-CSRF", "1"}, extra...)
}

func withCookie(value string, extra ...string) []string {
	return page(append([]string{"Cookie", refreshCookie + "=" + value}, extra...)...)
}

// refreshCookieOf returns the latchkey_refresh cookie a response sets, or
// nil. It fails tb when there is more than one.
func refreshCookieOf(tb testing.TB, r response) *http.Cookie {
	tb.Helper()
	var found []*http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == refreshCookie {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return nil
	case 1:
		return found[0]
	}
	tb.Fatalf("%d %s cookies set: %q", len(found), refreshCookie, r.header.Values("Set-Cookie"))
	return nil
}

// wantSessionBody checks a login or refresh answer of cookie mode and
// returns the access token and the cookie's refresh token.
func (s *browserServer) wantSessionBody(tb testing.TB, r response) (access, refresh string) {
	tb.Helper()
	if r.status != http.StatusOK {
		tb.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		tb.Errorf("Cache-Control = %q, want no-store", cc)
	}
	m := r.json(tb)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"accessToken", "expiresIn", "tokenType"}) {
		tb.Errorf("body fields = %v, want exactly accessToken, expiresIn, tokenType", keys)
	}
	if m["tokenType"] != "Bearer" || m["expiresIn"] != float64(900) {
		tb.Errorf("body = %s", r.body)
	}
	c := refreshCookieOf(tb, r)
	if c == nil || c.Value == "" {
		tb.Fatalf("no refresh cookie set: %q", r.header.Values("Set-Cookie"))
	}
	if bytes.Contains(r.body, []byte(c.Value)) {
		tb.Error("the body contains the refresh token")
	}
	access, _ = m["accessToken"].(string)
	if _, err := s.env.Verifier.Verify(context.Background(), access); err != nil {
		tb.Errorf("the access token does not verify: %v", err)
	}
	return access, c.Value
}

func (s *browserServer) sessionLogin(tb testing.TB) (access, refresh string) {
	tb.Helper()
	return s.wantSessionBody(tb, s.do(tb, "POST", "/session/login",
		map[string]string{"username": "john", "password": "password123admin"}, page()...))
}

// wantCleared checks that r deletes the cookie: Max-Age=0 with the path it
// was set on, or the browser would keep it.
func wantCleared(tb testing.TB, r response) {
	tb.Helper()
	c := refreshCookieOf(tb, r)
	if c == nil {
		tb.Fatalf("the cookie is not cleared: Set-Cookie %q", r.header.Values("Set-Cookie"))
	}
	raw := r.header.Get("Set-Cookie")
	if c.MaxAge >= 0 || !strings.Contains(raw, "Max-Age=0") || c.Value != "" || c.Path != "/session" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		tb.Errorf("clearing Set-Cookie = %q, want an empty value, Path=/session, Max-Age=0, HttpOnly, SameSite=Strict", raw)
	}
}

func TestSessionLoginCookie(t *testing.T) {
	s := newBrowserServer(t, browserOpts{})
	r := s.do(t, "POST", "/session/login", map[string]string{"username": "john", "password": "password123admin"}, page()...)
	_, refresh := s.wantSessionBody(t, r)

	raw := r.header.Get("Set-Cookie")
	c := refreshCookieOf(t, r)
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/session" || c.Domain != "" {
		t.Errorf("Set-Cookie = %q, want HttpOnly, SameSite=Strict, Path=/session and no Domain", raw)
	}
	if want := int((6 * time.Hour).Seconds()); c.MaxAge != want || !strings.Contains(raw, "Max-Age="+strconv.Itoa(want)) {
		t.Errorf("Set-Cookie = %q, want Max-Age=%d, the refresh idle lifetime", raw, want)
	}
	if c.Secure {
		t.Errorf("Set-Cookie = %q: Secure for an http issuer without LATCHKEY_COOKIE_SECURE", raw)
	}
	// The cookie holds a real refresh token of the session: the JSON
	// endpoint takes it.
	if r := s.do(t, "POST", "/token", map[string]string{"refreshToken": refresh}); r.status != 200 {
		t.Errorf("the cookie's token is not a refresh token: %d %s", r.status, r.body)
	}
}

// TestSessionLoginFailures: as /login, with no cookie set on any failure.
func TestSessionLoginFailures(t *testing.T) {
	s := newBrowserServer(t, browserOpts{mod: func(c *latchkey.Config) {
		c.LoginRatePerUser = latchkey.Rate{Burst: 3, Every: time.Hour}
	}})
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"wrong password", map[string]string{"username": "john", "password": "password123wrong"}, 401, "invalid_credentials"},
		{"unknown user", map[string]string{"username": "nobody", "password": "password123admin"}, 401, "invalid_credentials"},
		{"missing password", map[string]string{"username": "john"}, 400, "invalid_request"},
		{"not JSON", "username=john&password=x", 400, "invalid_request"},
		{"unknown field", map[string]string{"username": "john", "password": "password123admin", "refreshToken": "x"}, 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "POST", "/session/login", tc.body, page()...)
			wantError(t, r, tc.status, tc.code)
			if c := refreshCookieOf(t, r); c != nil {
				t.Errorf("a failed login sets a cookie: %q", r.header.Values("Set-Cookie"))
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		r := s.do(t, "POST", "/session/login", `{"username":"john","password":"password123admin"}`, page("Content-Type", "text/plain")...)
		wantError(t, r, 415, "unsupported_media_type")
	})
	t.Run("throttled", func(t *testing.T) {
		// One wrong password above and two here spend john's budget of
		// three; the right password is then refused, with the wait.
		for range 2 {
			wantError(t, s.do(t, "POST", "/session/login", map[string]string{"username": "john", "password": "password123wrong"}, page()...), 401, "invalid_credentials")
		}
		r := s.do(t, "POST", "/session/login", map[string]string{"username": "john", "password": "password123admin"}, page()...)
		wantError(t, r, 429, "rate_limited")
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
		}
		if c := refreshCookieOf(t, r); c != nil {
			t.Error("a throttled login sets a cookie")
		}
	})
}

func TestSessionCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		issuer string
		secure bool // Config.CookieSecure
		want   bool
		path   string
	}{
		{name: "http issuer", issuer: "http://auth.test", path: "/session"},
		{name: "http issuer, LATCHKEY_COOKIE_SECURE=true", issuer: "http://auth.test", secure: true, want: true, path: "/session"},
		{name: "https issuer", issuer: "https://auth.test", want: true, path: "/session"},
		{name: "https issuer behind a path", issuer: "https://example.com/auth/", want: true, path: "/auth/session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newBrowserServer(t, browserOpts{issuer: tc.issuer, server: func(c *Config) { c.CookieSecure = tc.secure }})
			origin, _ := webOrigin(tc.issuer, true)
			r := s.do(t, "POST", "/session/login", map[string]string{"username": "john", "password": "password123admin"},
				"Origin", origin, "X-Latchkey-CSRF", "1")
			c := refreshCookieOf(t, r)
			if r.status != 200 || c == nil {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if c.Secure != tc.want || c.Path != tc.path {
				t.Errorf("Set-Cookie = %q, want Secure %v and Path=%s", r.header.Get("Set-Cookie"), tc.want, tc.path)
			}
			r = s.do(t, "POST", "/session/logout", nil, "Origin", origin, "X-Latchkey-CSRF", "1", "Cookie", refreshCookie+"="+c.Value)
			if cleared := refreshCookieOf(t, r); cleared == nil || cleared.Secure != tc.want || cleared.Path != tc.path || cleared.MaxAge >= 0 {
				t.Errorf("clearing Set-Cookie = %q, want the same Secure and Path, Max-Age=0", r.header.Get("Set-Cookie"))
			}
		})
	}
}

func TestSessionRefreshRotates(t *testing.T) {
	s := newBrowserServer(t, browserOpts{clocked: true, mod: func(c *latchkey.Config) { c.ReuseGrace = 10 * time.Second }})
	_, rt0 := s.sessionLogin(t)

	_, rt1 := s.wantSessionBody(t, s.do(t, "POST", "/session/refresh", nil, withCookie(rt0)...))
	if rt1 == rt0 {
		t.Fatal("the refresh cookie did not rotate")
	}
	t.Run("grace: the previous cookie again gets the same successor", func(t *testing.T) {
		s.env.Clock.Advance(5 * time.Second)
		_, again := s.wantSessionBody(t, s.do(t, "POST", "/session/refresh", nil, withCookie(rt0)...))
		if again != rt1 {
			t.Error("a retry within the grace window forked the chain")
		}
	})
	_, rt2 := s.wantSessionBody(t, s.do(t, "POST", "/session/refresh", nil, withCookie(rt1)...))
	t.Run("reuse after the grace window revokes the session and clears the cookie", func(t *testing.T) {
		s.env.Clock.Advance(time.Minute)
		r := s.do(t, "POST", "/session/refresh", nil, withCookie(rt0)...)
		wantError(t, r, 401, "invalid_grant")
		wantCleared(t, r)
		r = s.do(t, "POST", "/session/refresh", nil, withCookie(rt2)...)
		wantError(t, r, 401, "invalid_grant")
		wantCleared(t, r)
	})
}

func TestSessionRefreshFailures(t *testing.T) {
	s := newBrowserServer(t, browserOpts{clocked: true})
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"no cookie", page()},
		{"empty cookie", withCookie("")},
		{"not a token", withCookie("not-a-refresh-token")},
		{"unknown token", withCookie(strings.Repeat("A", 43))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "POST", "/session/refresh", nil, tc.headers...)
			wantError(t, r, 401, "invalid_grant")
			wantCleared(t, r)
		})
	}
	t.Run("expired session", func(t *testing.T) {
		_, rt := s.sessionLogin(t)
		s.env.Clock.Advance(7 * time.Hour) // past the 6 h idle lifetime
		r := s.do(t, "POST", "/session/refresh", nil, withCookie(rt)...)
		wantError(t, r, 401, "invalid_grant")
		wantCleared(t, r)
	})
	t.Run("signed out everywhere", func(t *testing.T) {
		_, rt := s.sessionLogin(t)
		u, err := s.store.UserByUsername(t.Context(), "john")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.svc.LogoutAll(t.Context(), u.ID, "", latchkey.Client{}); err != nil {
			t.Fatal(err)
		}
		r := s.do(t, "POST", "/session/refresh", nil, withCookie(rt)...)
		wantError(t, r, 401, "invalid_grant")
		wantCleared(t, r)
	})
	t.Run("database down keeps the cookie", func(t *testing.T) {
		_, rt := s.sessionLogin(t)
		s.store.Close()
		r := s.do(t, "POST", "/session/refresh", nil, withCookie(rt)...)
		wantError(t, r, 500, "server_error")
		if c := refreshCookieOf(t, r); c != nil {
			t.Errorf("an outage clears the cookie, signing the user out: %q", r.header.Get("Set-Cookie"))
		}
	})
}

// TestSessionRefreshRace: two tabs whose refreshes crossed are what the
// grace window is for; without one, exactly one of them wins.
func TestSessionRefreshRace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{
		{"with grace", 10 * time.Second},
		{"without grace", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newBrowserServer(t, browserOpts{mod: func(c *latchkey.Config) { c.ReuseGrace = tc.grace }})
			_, rt := s.sessionLogin(t)
			const n = 8
			answers := make([]response, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					answers[i] = s.do(t, "POST", "/session/refresh", nil, withCookie(rt)...)
				})
			}
			close(start)
			wg.Wait()
			successors := map[string]bool{}
			ok := 0
			for _, r := range answers {
				switch r.status {
				case 200:
					ok++
					successors[refreshCookieOf(t, r).Value] = true
				case 401:
					wantError(t, r, 401, "invalid_grant")
				default:
					t.Errorf("status %d: %s", r.status, r.body)
				}
			}
			if len(successors) > 1 {
				t.Errorf("%d different successors: the chain forked", len(successors))
			}
			if tc.grace > 0 && ok != n {
				t.Errorf("%d of %d racing refreshes succeeded within the grace window, want all", ok, n)
			}
			if tc.grace == 0 && ok > 1 {
				t.Errorf("%d of %d racing refreshes succeeded without a grace window, want at most one", ok, n)
			}
		})
	}
}

func TestSessionLogout(t *testing.T) {
	s := newBrowserServer(t, browserOpts{})
	access, rt := s.sessionLogin(t)

	r := s.do(t, "POST", "/session/logout", nil, withCookie(rt)...)
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	wantCleared(t, r)
	wantError(t, s.do(t, "POST", "/session/refresh", nil, withCookie(rt)...), 401, "invalid_grant")
	wantError(t, s.do(t, "GET", "/me", nil, "Authorization", "Bearer "+access), 401, "invalid_token")

	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"again", withCookie(rt)},
		{"without a cookie", page()},
		{"with an unknown token", withCookie(strings.Repeat("A", 43))},
		{"with garbage", withCookie("%%%")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(t, "POST", "/session/logout", nil, tc.headers...)
			if r.status != http.StatusNoContent {
				t.Fatalf("%d %s, want 204", r.status, r.body)
			}
			wantCleared(t, r)
		})
	}
	t.Run("database down keeps the cookie", func(t *testing.T) {
		s := newBrowserServer(t, browserOpts{})
		_, rt := s.sessionLogin(t)
		s.store.Close()
		r := s.do(t, "POST", "/session/logout", nil, withCookie(rt)...)
		wantError(t, r, 500, "server_error")
		if c := refreshCookieOf(t, r); c != nil {
			t.Errorf("a failed logout clears the cookie, so the user believes the session ended: %q", r.header.Get("Set-Cookie"))
		}
	})
}

// TestSessionLoginEndsPreviousSession: signing in again in the same browser
// replaces its cookie; the session the old cookie held is ended, not left
// live where nobody can reach it.
func TestSessionLoginEndsPreviousSession(t *testing.T) {
	s := newBrowserServer(t, browserOpts{})
	_, old := s.sessionLogin(t)
	r := s.do(t, "POST", "/session/login", map[string]string{"username": "john", "password": "password123admin"}, withCookie(old)...)
	_, fresh := s.wantSessionBody(t, r)
	wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": old}), 401, "invalid_grant")
	if r := s.do(t, "POST", "/session/refresh", nil, withCookie(fresh)...); r.status != 200 {
		t.Errorf("the new session: %d %s", r.status, r.body)
	}
}

// sessionState is what a /session/* request could change for john: his
// sessions and the refresh token each holds.
func (s *browserServer) sessionState(tb testing.TB) string {
	tb.Helper()
	u, err := s.store.UserByUsername(context.Background(), "john")
	if err != nil {
		tb.Fatal(err)
	}
	list, err := s.store.ListSessions(context.Background(), u.ID)
	if err != nil {
		tb.Fatal(err)
	}
	var b strings.Builder
	for _, sess := range list {
		b.WriteString(sess.ID + " " + sess.LastUsedAt.String() + " " + sess.RevokedAt.String() + " " + string(sess.CurrentHash) + "\n")
	}
	return b.String()
}

// TestSessionCSRF sends every /session/* request in each way the CSRF rules
// refuse: each answer is 403 forbidden, sets no cookie (not even a clearing
// one) and changes nothing in the database.
func TestSessionCSRF(t *testing.T) {
	// Without a grace window a refresh that slipped through would show as
	// a rotated token, and a repeat of it as reuse.
	s := newBrowserServer(t, browserOpts{mod: func(c *latchkey.Config) {
		c.ReuseGrace = 0
		c.LoginRatePerUser = latchkey.Rate{Burst: 2, Every: time.Hour}
	}})
	_, rt := s.sessionLogin(t)
	cookie := "Cookie"
	value := refreshCookie + "=" + rt

	refusals := []struct {
		name    string
		headers []string
	}{
		{"no Origin", []string{"X-Latchkey-CSRF", "1", cookie, value}},
		{"another site", []string{"Origin", "https://evil.example", "X-Latchkey-CSRF", "1", cookie, value}},
		{"another port", []string{"Origin", "http://auth.test:8080", "X-Latchkey-CSRF", "1", cookie, value}},
		{"another scheme", []string{"Origin", "https://auth.test", "X-Latchkey-CSRF", "1", cookie, value}},
		{"a suffix of the allowed host", []string{"Origin", "http://auth.test.evil.example", "X-Latchkey-CSRF", "1", cookie, value}},
		{"null (sandboxed frame, file:)", []string{"Origin", "null", "X-Latchkey-CSRF", "1", cookie, value}},
		{"no CSRF header", []string{"Origin", testOrigin, cookie, value}},
		{"CSRF header 0", []string{"Origin", testOrigin, "X-Latchkey-CSRF", "0", cookie, value}},
		{"CSRF header true", []string{"Origin", testOrigin, "X-Latchkey-CSRF", "true", cookie, value}},
		{"neither", []string{cookie, value}},
	}
	bodies := map[string]any{
		// Wrong passwords: had any got through, the throttle would have
		// counted it, and the right password would be refused below.
		"/session/login":   map[string]string{"username": "john", "password": "password123wrong"},
		"/session/refresh": nil,
		"/session/logout":  nil,
	}
	before := s.sessionState(t)
	for _, path := range []string{"/session/login", "/session/refresh", "/session/logout"} {
		for _, tc := range refusals {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				r := s.do(t, "POST", path, bodies[path], tc.headers...)
				wantError(t, r, 403, "forbidden")
				if got := r.header.Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("a refused request sets a cookie: %q", got)
				}
			})
		}
		t.Run(path+" two Origin headers", func(t *testing.T) {
			req, _ := http.NewRequest("POST", s.URL+path, nil)
			req.Header["Origin"] = []string{testOrigin, "https://evil.example"}
			req.Header.Set("X-Latchkey-CSRF", "1")
			req.Header.Set("Cookie", value)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 403 || len(res.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("%d %q, want 403 and no cookie", res.StatusCode, res.Header.Values("Set-Cookie"))
			}
		})
	}
	if after := s.sessionState(t); after != before {
		t.Errorf("refused requests changed the sessions:\nbefore %s\nafter  %s", before, after)
	}
	// The session is untouched: its cookie still refreshes (once; grace 0),
	// and the throttle has counted no password.
	if r := s.do(t, "POST", "/session/refresh", nil, withCookie(rt)...); r.status != 200 {
		t.Errorf("the cookie no longer refreshes after refused requests: %d %s", r.status, r.body)
	}
	s.sessionLogin(t)

	t.Run("an allowed app origin passes", func(t *testing.T) {
		r := s.do(t, "POST", "/session/login", map[string]string{"username": "john", "password": "password123admin"},
			"Origin", testSPA, "X-Latchkey-CSRF", "1")
		s.wantSessionBody(t, r)
	})
	t.Run("JSON clients are unaffected", func(t *testing.T) {
		// No Origin, no header, or a browser's foreign Origin: /login,
		// /token and /logout never read a cookie, so they need no check.
		for _, headers := range [][]string{nil, {"Origin", "https://evil.example"}} {
			r := s.do(t, "POST", "/login", map[string]string{"username": "john", "password": "password123admin"}, headers...)
			if r.status != 200 {
				t.Fatalf("/login with %v: %d %s", headers, r.status, r.body)
			}
			rt := r.json(t)["refreshToken"].(string)
			r = s.do(t, "POST", "/token", map[string]string{"refreshToken": rt}, headers...)
			if r.status != 200 {
				t.Fatalf("/token with %v: %d %s", headers, r.status, r.body)
			}
			if r := s.do(t, "POST", "/logout", map[string]string{"refreshToken": r.json(t)["refreshToken"].(string)}, headers...); r.status != 204 {
				t.Errorf("/logout with %v: %d %s", headers, r.status, r.body)
			}
		}
	})
}
