package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/decodetest"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/token"
)

type testServer struct {
	*httptest.Server
	store latchkey.Store
	svc   *latchkey.Service
	keys  *latchkey.KeyRing
}

type serverOpts struct {
	secret  []byte
	mod     func(*latchkey.Config)
	trusted []netip.Prefix
}

// newTestServer is the package's one fixture: the auth server on
// httptest over latchkeytest's Service, on the wall clock.
func newTestServer(tb testing.TB, o serverOpts) *testServer {
	tb.Helper()
	e := latchkeytest.New(tb, latchkeytest.Options{Secret: o.secret, RealTime: true, Config: func(c *latchkey.Config) {
		c.Issuer = "http://auth.test"
		if o.mod != nil {
			o.mod(c)
		}
	}})
	h, err := New(Config{Service: e.Service, Keys: e.Keys, TrustedProxies: o.trusted})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	return &testServer{Server: srv, store: e.Store, svc: e.Service, keys: e.Keys}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// do sends a request; body may be a string (sent as is) or a value (sent
// as JSON). Headers come in pairs.
func (s *testServer) do(tb testing.TB, method, path string, body any, headers ...string) response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// wantError checks the contract's error shape.
func wantError(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	m := r.json(tb)
	if m["error"] != code {
		tb.Errorf("error = %v, want %s", m["error"], code)
	}
	if d, _ := m["error_description"].(string); d == "" {
		tb.Errorf("error_description missing in %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type = %q", ct)
	}
}

func (s *testServer) mustUser(tb testing.TB, name, pass string, role latchkey.Role) {
	tb.Helper()
	if _, err := s.svc.CreateUser(context.Background(), name, pass, role); err != nil {
		tb.Fatal(err)
	}
}

func (s *testServer) login(tb testing.TB, name, pass string) (access, refresh string) {
	tb.Helper()
	r := s.do(tb, "POST", "/login", map[string]string{"username": name, "password": pass})
	if r.status != 200 {
		tb.Fatalf("login %s: %d %s", name, r.status, r.body)
	}
	m := r.json(tb)
	return m["accessToken"].(string), m["refreshToken"].(string)
}

func TestRegister(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	r := s.do(t, "POST", "/register", map[string]string{"username": "Anna", "password": "password123member"})
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	m := r.json(t)
	if m["username"] != "Anna" || m["role"] != "member" || m["id"] == "" {
		t.Errorf("body = %s", r.body)
	}
	if _, err := time.Parse(time.RFC3339, m["createdAt"].(string)); err != nil || !strings.HasSuffix(m["createdAt"].(string), "Z") {
		t.Errorf("createdAt %v is not RFC 3339 UTC", m["createdAt"])
	}
	for _, k := range []string{"password", "passwordHash", "password_hash"} {
		if _, ok := m[k]; ok {
			t.Errorf("response carries %s", k)
		}
	}
	wantError(t, s.do(t, "POST", "/register", map[string]string{"username": "anna", "password": "password123member"}), 409, "conflict")
	wantError(t, s.do(t, "POST", "/register", map[string]string{"username": "ab", "password": "password123member"}), 400, "invalid_request")
	wantError(t, s.do(t, "POST", "/register", map[string]string{"username": "annabel", "password": "short"}), 400, "invalid_request")
	wantError(t, s.do(t, "POST", "/register", map[string]string{"username": "аnna", "password": "password123"}), 400, "invalid_request")

	closed := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) { c.RegistrationClosed = true }})
	wantError(t, closed.do(t, "POST", "/register", map[string]string{"username": "anna", "password": "password123member"}), 403, "forbidden")
}

func TestLogin(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	s.mustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	r := s.do(t, "POST", "/login", map[string]string{"username": "john", "password": "password123admin"})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	m := r.json(t)
	if m["tokenType"] != "Bearer" || m["expiresIn"] != float64(900) || m["accessToken"] == "" || m["refreshToken"] == "" {
		t.Errorf("body = %s", r.body)
	}

	unknown := s.do(t, "POST", "/login", map[string]string{"username": "nobody", "password": "password123admin"})
	wrong := s.do(t, "POST", "/login", map[string]string{"username": "john", "password": "password123wrong"})
	wantError(t, unknown, 401, "invalid_credentials")
	wantError(t, wrong, 401, "invalid_credentials")
	if !bytes.Equal(unknown.body, wrong.body) {
		t.Errorf("unknown user and wrong password answer differently:\n%s\n%s", unknown.body, wrong.body)
	}
	wantError(t, s.do(t, "POST", "/login", map[string]string{"username": "john"}), 400, "invalid_request")
}

func TestLoginRateLimited(t *testing.T) {
	s := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) {
		c.LoginRatePerUser = latchkey.Rate{Burst: 2, Every: time.Hour}
	}})
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
	for range 2 {
		wantError(t, s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "wrongpassword"}), 401, "invalid_credentials")
	}
	r := s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "password123member"})
	wantError(t, r, 429, "rate_limited")
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 3600 {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
}

// TestRegisterRateLimited: one address cannot mass-create accounts; the
// limited answer is the contract's 429 with Retry-After and creates nothing.
func TestRegisterRateLimited(t *testing.T) {
	s := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) {
		c.RegisterRatePerIP = latchkey.Rate{Burst: 2, Every: time.Hour}
	}})
	for _, name := range []string{"user1", "user2"} {
		if r := s.do(t, "POST", "/register", map[string]string{"username": name, "password": "password123"}); r.status != 201 {
			t.Fatalf("register %s: %d %s", name, r.status, r.body)
		}
	}
	r := s.do(t, "POST", "/register", map[string]string{"username": "user3", "password": "password123"})
	wantError(t, r, 429, "rate_limited")
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > 3600 {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	if _, err := s.store.UserByUsername(t.Context(), "user3"); err == nil {
		t.Error("a limited registration created the user")
	}
}

// TestPasswordBurstBusy sends bursts of logins and of registrations to a
// server that may hash one password at a time with one more waiting: the
// rest are turned away at once with 429 and a Retry-After, never a 500 and
// never an unbounded pile of 64 MiB argon2id buffers.
func TestPasswordBurstBusy(t *testing.T) {
	for _, tc := range []struct {
		path   string
		status int // the answer to a request that gets to hash
		code   string
	}{
		{"/login", 401, "invalid_credentials"},
		{"/register", 201, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			s := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) {
				c.PasswordConcurrency = 1
				c.PasswordQueue = 1
				c.Argon2 = latchkey.Argon2Params{Memory: 64 * 1024, Time: 1, Threads: 1}
			}})
			const n = 12
			start := make(chan struct{})
			answers := make([]response, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					answers[i] = s.do(t, "POST", tc.path, map[string]string{"username": fmt.Sprintf("nobody%d", i), "password": "password123wrong"})
				})
			}
			close(start)
			wg.Wait()
			busy := 0
			for _, r := range answers {
				switch r.status {
				case tc.status:
					if tc.code != "" {
						wantError(t, r, tc.status, tc.code)
					}
				case 429:
					wantError(t, r, 429, "rate_limited")
					if got := r.header.Get("Retry-After"); got != "1" {
						t.Errorf("busy answer Retry-After = %q, want 1", got)
					}
					busy++
				default:
					t.Errorf("status %d, want %d or 429: %s", r.status, tc.status, r.body)
				}
			}
			if busy == 0 {
				t.Errorf("no request of %d concurrent ones was turned away; the gate admits more than one running and one waiting", n)
			}
			// A registration turned away created nothing.
			if tc.path == "/register" {
				if users, err := s.store.ListUsers(t.Context(), "", n+1); err != nil || len(users) != n-busy {
					t.Errorf("users = %d, %v; want %d (one per 201)", len(users), err, n-busy)
				}
			}
		})
	}
}

func TestTokenRotationOverHTTP(t *testing.T) {
	s := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) { c.ReuseGrace = 0 }})
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
	_, rt0 := s.login(t, "anna", "password123member")

	r := s.do(t, "POST", "/token", map[string]string{"refreshToken": rt0})
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("refresh: %d %s %v", r.status, r.body, r.header)
	}
	rt1 := r.json(t)["refreshToken"].(string)
	if rt1 == rt0 {
		t.Fatal("refresh token not rotated")
	}
	// The tutorials' {"token"} works too.
	r = s.do(t, "POST", "/token", map[string]string{"token": rt1})
	if r.status != 200 {
		t.Fatalf("refresh with token field: %d %s", r.status, r.body)
	}
	rt2 := r.json(t)["refreshToken"].(string)
	// Reuse of rt0 kills the session, including rt2.
	wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": rt0}), 401, "invalid_grant")
	wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": rt2}), 401, "invalid_grant")

	wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": "not-a-token"}), 401, "invalid_grant")
	wantError(t, s.do(t, "POST", "/token", map[string]string{}), 400, "invalid_request")
	wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": rt2, "token": rt1}), 400, "invalid_request")
}

func TestLogoutOverHTTP(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
	for _, method := range []string{"POST", "DELETE"} {
		t.Run(method, func(t *testing.T) {
			access, rt := s.login(t, "anna", "password123member")
			if r := s.do(t, method, "/logout", map[string]string{"refreshToken": rt}); r.status != 204 {
				t.Fatalf("logout: %d %s", r.status, r.body)
			}
			wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": rt}), 401, "invalid_grant")
			// The auth server refuses the revoked session's access token.
			wantError(t, s.do(t, "GET", "/me", nil, "Authorization", "Bearer "+access), 401, "invalid_token")
			if r := s.do(t, method, "/logout", map[string]string{"token": rt}); r.status != 204 {
				t.Errorf("second logout: %d", r.status)
			}
			if r := s.do(t, method, "/logout", map[string]string{"refreshToken": strings.Repeat("x", 43)}); r.status != 204 {
				t.Errorf("unknown token: %d", r.status)
			}
			wantError(t, s.do(t, method, "/logout", "{"), 400, "invalid_request")
			wantError(t, s.do(t, method, "/logout", map[string]string{}), 400, "invalid_request")
		})
	}
}

func TestLogoutAllAndMe(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
	a1, r1 := s.login(t, "anna", "password123member")
	_, r2 := s.login(t, "anna", "password123member")

	r := s.do(t, "GET", "/me", nil, "Authorization", "Bearer "+a1)
	if r.status != 200 {
		t.Fatalf("me: %d %s", r.status, r.body)
	}
	if m := r.json(t); m["username"] != "anna" || m["role"] != "member" || m["id"] == "" || m["createdAt"] == "" {
		t.Errorf("me = %s", r.body)
	}

	missing := s.do(t, "GET", "/me", nil)
	wantError(t, missing, 401, "invalid_token")
	if got := missing.header.Get("WWW-Authenticate"); got != `Bearer realm="latchkey"` {
		t.Errorf("WWW-Authenticate without a token = %q", got)
	}
	bad := s.do(t, "GET", "/me", nil, "Authorization", "Bearer abc.def.ghi")
	wantError(t, bad, 401, "invalid_token")
	if got := bad.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="latchkey", error="invalid_token"`) {
		t.Errorf("WWW-Authenticate for a bad token = %q", got)
	}

	wantError(t, s.do(t, "POST", "/logout/all", nil), 401, "invalid_token")
	if r := s.do(t, "POST", "/logout/all", nil, "Authorization", "Bearer "+a1); r.status != 204 {
		t.Fatalf("logout/all: %d %s", r.status, r.body)
	}
	for _, rt := range []string{r1, r2} {
		wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": rt}), 401, "invalid_grant")
	}
	wantError(t, s.do(t, "GET", "/me", nil, "Authorization", "Bearer "+a1), 401, "invalid_token")
}

func TestWellKnown(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	r := s.do(t, "GET", "/.well-known/jwks.json", nil)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	var set token.JWKS
	if err := json.Unmarshal(r.body, &set); err != nil || len(set.Keys) != 2 {
		t.Fatalf("jwks %s: %v; want the next and the active key", r.body, err)
	}
	var keys []token.Key
	active := false
	for _, j := range set.Keys {
		if j.Alg != "ES256" || j.Kty != "EC" {
			t.Errorf("jwk = %+v", j)
		}
		active = active || j.Kid == s.keys.ActiveID()
		k, err := j.Key()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if !active {
		t.Errorf("JWKS %s lacks the active key %s", r.body, s.keys.ActiveID())
	}
	if bytes.Contains(r.body, []byte(`"d"`)) {
		t.Error("JWKS leaks a private key component")
	}
	access, _ := func() (string, string) {
		s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
		return s.login(t, "anna", "password123member")
	}()
	v := token.NewVerifier(token.StaticKeys(keys...), token.WithIssuer("http://auth.test"), token.WithAudience("latchkey"))
	if _, err := v.Verify(context.Background(), access); err != nil {
		t.Errorf("token does not verify with the published key: %v", err)
	}

	d := s.do(t, "GET", "/.well-known/openid-configuration", nil).json(t)
	if d["issuer"] != "http://auth.test" || d["jwks_uri"] != "http://auth.test/.well-known/jwks.json" || d["token_endpoint"] != "http://auth.test/token" {
		t.Errorf("discovery = %v", d)
	}

	hs := newTestServer(t, serverOpts{secret: []byte("0123456789abcdefghijklmnopqrstuvwxyz")})
	if r := hs.do(t, "GET", "/.well-known/jwks.json", nil); string(bytes.TrimSpace(r.body)) != `{"keys":[]}` {
		t.Errorf("shared-secret JWKS = %s", r.body)
	}
}

func TestHealth(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	if r := s.do(t, "GET", "/healthz", nil); r.status != 200 || r.json(t)["status"] != "ok" {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	if r := s.do(t, "GET", "/readyz", nil); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	s.store.Close()
	wantError(t, s.do(t, "GET", "/readyz", nil), 503, "server_error")
	if r := s.do(t, "GET", "/healthz", nil); r.status != 200 {
		t.Errorf("healthz with the database closed: %d", r.status)
	}
}

// TestHostileBodies sends every refused body of the shared table
// (internal/decodetest, which books answers too) and the auth server's own
// field-level cases to each JSON endpoint: each gets its status and code,
// and nothing is written.
func TestHostileBodies(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	type hostile struct {
		name        string
		body        string
		contentType string
		status      int
		code        string
	}
	cases := []hostile{
		{"wrong type", `{"username":1,"password":"password123"}`, "application/json", 400, "invalid_request"},
		{"null field", `{"username":null,"password":"password123"}`, "application/json", 400, "invalid_request"},
		{"unknown field", `{"username":"anna","password":"password123","role":"admin"}`, "application/json", 400, "invalid_request"},
		{"field in other case", `{"USERNAME":"anna","password":"password123"}`, "application/json", 400, "invalid_request"},
		{"trailing text after a valid body", `{"username":"anna","password":"password123"} x`, "application/json", 400, "invalid_request"},
	}
	for _, c := range decodetest.Cases(t) {
		if c.Status == 0 {
			continue
		}
		ct := c.ContentType
		if ct == "" {
			ct = "-" // no Content-Type header at all
		}
		cases = append(cases, hostile{"table: " + c.Name, string(c.Body), ct, c.Status, c.Code})
	}
	for _, tc := range cases {
		for _, path := range []string{"/register", "/login", "/token", "/logout"} {
			t.Run(tc.name+path, func(t *testing.T) {
				headers := []string{"Content-Type", tc.contentType}
				if tc.contentType == "-" {
					headers[1] = ""
				}
				wantError(t, s.do(t, "POST", path, tc.body, headers...), tc.status, tc.code)
			})
		}
	}
	t.Run("charset parameter accepted", func(t *testing.T) {
		r := s.do(t, "POST", "/register", `{"username":"charset","password":"password123"}`, "Content-Type", "application/json; charset=utf-8")
		if r.status != 201 {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("no content type read as JSON", func(t *testing.T) {
		r := s.do(t, "POST", "/register", `{"username":"nocttype","password":"password123"}`, "Content-Type", "")
		if r.status != 201 {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("nothing was half-written", func(t *testing.T) {
		users, err := s.store.ListUsers(context.Background(), "", 10)
		if err != nil || len(users) != 2 {
			t.Errorf("users = %d, %v; want the 2 valid registrations only", len(users), err)
		}
	})
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	wantError(t, s.do(t, "GET", "/nope", nil), 404, "not_found")
	r := s.do(t, "GET", "/login", nil)
	wantError(t, r, 405, "method_not_allowed")
	if r.header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	wantError(t, s.do(t, "PUT", "/logout", nil), 405, "method_not_allowed")
}

// TestOpenAPIMatchesRoutes fails when a route exists in code but not in
// openapi.json, or the other way round.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	s := newTestServer(t, serverOpts{})
	var coded []string
	for _, rt := range routes(Config{Service: s.svc, Keys: s.keys}, nil) {
		coded = append(coded, rt.pattern)
	}
	slices.Sort(documented)
	slices.Sort(coded)
	if !slices.Equal(documented, coded) {
		t.Errorf("routes and openapi.json differ:\ncode: %v\ndoc:  %v", coded, documented)
	}
	if r := s.do(t, "GET", "/openapi.json", nil); r.status != 200 || !bytes.Equal(r.body, openAPI) {
		t.Errorf("GET /openapi.json: %d", r.status)
	}
}
