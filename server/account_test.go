package server

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/decodetest"
)

// The tests of the contract's "Account security" section, over real
// HTTP, on a Service whose clock the test moves (TOTP codes are a
// function of time).

const annaPass = "password123member"

func newAccountServer(t *testing.T) *browserServer {
	t.Helper()
	s := newBrowserServer(t, browserOpts{clocked: true})
	s.mustUser(t, "anna", annaPass, latchkey.RoleMember)
	return s
}

func bearerOf(access string) []string { return []string{"Authorization", "Bearer " + access} }

// sidOf reads the session id of an access token.
func (s *browserServer) sidOf(t *testing.T, access string) string {
	t.Helper()
	c, err := s.env.Verifier.Verify(t.Context(), access)
	if err != nil {
		t.Fatal(err)
	}
	return c.SessionID
}

func (s *browserServer) refreshStatus(t *testing.T, refresh string) int {
	t.Helper()
	return s.do(t, "POST", "/token", map[string]string{"refreshToken": refresh}).status
}

func TestChangePasswordOverHTTP(t *testing.T) {
	s := newAccountServer(t)
	here, _ := s.login(t, "anna", annaPass)
	otherAccess, otherRefresh := s.login(t, "anna", annaPass)
	johnAccess, johnRefresh := s.login(t, "john", "password123admin")

	wantError(t, s.do(t, "POST", "/me/password", map[string]string{"currentPassword": annaPass, "newPassword": "a new password"}), 401, "invalid_token")
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"no new password", map[string]string{"currentPassword": annaPass}, 400, "invalid_request"},
		{"a short new password", map[string]string{"currentPassword": annaPass, "newPassword": "short"}, 400, "invalid_request"},
		{"an unknown field", map[string]string{"currentPassword": annaPass, "newPassword": "a new password", "password": "x"}, 400, "invalid_request"},
		{"a wrong current password", map[string]string{"currentPassword": "not hers at all", "newPassword": "a new password"}, 401, "invalid_credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, s.do(t, "POST", "/me/password", tc.body, bearerOf(here)...), tc.status, tc.code)
		})
	}
	r := s.do(t, "POST", "/me/password", map[string]string{"currentPassword": annaPass, "newPassword": "a new password"}, bearerOf(here)...)
	if r.status != http.StatusNoContent {
		t.Fatalf("POST /me/password = %d %s, want 204", r.status, r.body)
	}
	if st := s.do(t, "GET", "/me", nil, bearerOf(here)...).status; st != 200 {
		t.Errorf("GET /me with the changing session's token = %d, want 200", st)
	}
	wantError(t, s.do(t, "GET", "/me", nil, bearerOf(otherAccess)...), 401, "invalid_token")
	if st := s.refreshStatus(t, otherRefresh); st != 401 {
		t.Errorf("the other session's refresh = %d, want 401", st)
	}
	if st := s.do(t, "GET", "/me", nil, bearerOf(johnAccess)...).status; st != 200 {
		t.Errorf("another user's token = %d, want 200", st)
	}
	if st := s.refreshStatus(t, johnRefresh); st != 200 {
		t.Errorf("another user's refresh = %d, want 200", st)
	}
	wantError(t, s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": annaPass}), 401, "invalid_credentials")
	s.login(t, "anna", "a new password")
}

func TestMySessionsOverHTTP(t *testing.T) {
	s := newAccountServer(t)
	here, _ := s.login(t, "anna", annaPass)
	s.env.Clock.Advance(time.Second)
	r := s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": annaPass}, "User-Agent", "Phone/2.0")
	phoneAccess, phoneRefresh := r.json(t)["accessToken"].(string), r.json(t)["refreshToken"].(string)
	johnAccess, johnRefresh := s.login(t, "john", "password123admin")

	wantError(t, s.do(t, "GET", "/me/sessions", nil), 401, "invalid_token")
	r = s.do(t, "GET", "/me/sessions", nil, bearerOf(here)...)
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /me/sessions = %d (Cache-Control %q) %s", r.status, r.header.Get("Cache-Control"), r.body)
	}
	list := r.json(t)["sessions"].([]any)
	if len(list) != 2 {
		t.Fatalf("%d sessions listed, want anna's 2: %s", len(list), r.body)
	}
	phone, this := list[0].(map[string]any), list[1].(map[string]any)
	for _, f := range []string{"id", "createdAt", "lastUsedAt", "expiresAt", "userAgent", "ip", "current"} {
		if _, ok := phone[f]; !ok {
			t.Errorf("session has no %q: %v", f, phone)
		}
	}
	if phone["id"] != s.sidOf(t, phoneAccess) || phone["current"] != false || phone["userAgent"] != "Phone/2.0" || phone["ip"] != "127.0.0.1" {
		t.Errorf("newest session = %v, want the phone's, not current", phone)
	}
	if this["id"] != s.sidOf(t, here) || this["current"] != true {
		t.Errorf("older session = %v, want this one, current", this)
	}
	if bytes.Contains(r.body, []byte(s.sidOf(t, johnAccess))) {
		t.Error("another user's session is listed")
	}

	// Another user's session, or any id that is not one of the caller's
	// live sessions, is 404 alike.
	for _, id := range []string{s.sidOf(t, johnAccess), "0190d6a0-0000-7000-8000-000000000000", "not-an-id"} {
		wantError(t, s.do(t, "DELETE", "/me/sessions/"+id, nil, bearerOf(here)...), 404, "not_found")
	}
	if st := s.refreshStatus(t, johnRefresh); st != 200 {
		t.Errorf("john's session after anna's DELETE = %d, want 200", st)
	}
	if r := s.do(t, "DELETE", "/me/sessions/"+s.sidOf(t, phoneAccess), nil, bearerOf(here)...); r.status != http.StatusNoContent {
		t.Fatalf("DELETE the phone's session = %d %s", r.status, r.body)
	}
	if st := s.refreshStatus(t, phoneRefresh); st != 401 {
		t.Errorf("the ended session's refresh = %d, want 401", st)
	}
	wantError(t, s.do(t, "GET", "/me", nil, bearerOf(phoneAccess)...), 401, "invalid_token")
	wantError(t, s.do(t, "DELETE", "/me/sessions/"+s.sidOf(t, phoneAccess), nil, bearerOf(here)...), 404, "not_found")
	if list := s.do(t, "GET", "/me/sessions", nil, bearerOf(here)...).json(t)["sessions"].([]any); len(list) != 1 {
		t.Errorf("%d sessions after ending one, want 1", len(list))
	}
}

// enrolOverHTTP turns TOTP on for anna through the API and returns the
// secret and the recovery codes; the clock moves past the confirming code.
func (s *browserServer) enrolOverHTTP(t *testing.T, access string) (string, []string) {
	t.Helper()
	r := s.do(t, "POST", "/me/totp", map[string]string{"password": annaPass}, bearerOf(access)...)
	if r.status != 200 {
		t.Fatalf("POST /me/totp = %d %s", r.status, r.body)
	}
	secret := r.json(t)["secret"].(string)
	r = s.do(t, "POST", "/me/totp/confirm", map[string]string{"code": s.code(t, secret, 0)}, bearerOf(access)...)
	if r.status != 200 {
		t.Fatalf("POST /me/totp/confirm = %d %s", r.status, r.body)
	}
	var codes []string
	for _, c := range r.json(t)["recoveryCodes"].([]any) {
		codes = append(codes, c.(string))
	}
	s.env.Clock.Advance(30 * time.Second)
	return secret, codes
}

// code is the TOTP code at the Service's time plus d.
func (s *browserServer) code(t *testing.T, secret string, d time.Duration) string {
	t.Helper()
	c, err := latchkey.TOTPCode(secret, s.env.Clock.Now().Add(d))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// firstStep posts the password and returns the mfaToken of the
// mfa_required answer, checking its shape.
func (s *browserServer) firstStep(t *testing.T, path string, headers ...string) string {
	t.Helper()
	r := s.do(t, "POST", path, map[string]string{"username": "anna", "password": annaPass}, headers...)
	wantError(t, r, 401, "mfa_required")
	m := r.json(t)
	tok, _ := m["mfaToken"].(string)
	if len(tok) < 43 || len(m) != 3 {
		t.Fatalf("mfa_required body %s: want error, error_description and an mfaToken of 256 bits", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || refreshCookieOf(t, r) != nil {
		t.Errorf("mfa_required: Cache-Control %q, Set-Cookie %q; want no-store and no cookie", r.header.Get("Cache-Control"), r.header.Values("Set-Cookie"))
	}
	return tok
}

func TestTOTPEnrolmentOverHTTP(t *testing.T) {
	s := newAccountServer(t)
	access, _ := s.login(t, "anna", annaPass)

	wantError(t, s.do(t, "POST", "/me/totp", map[string]string{"password": annaPass}), 401, "invalid_token")
	wantError(t, s.do(t, "POST", "/me/totp", map[string]string{"password": "wrong password"}, bearerOf(access)...), 401, "invalid_credentials")
	r := s.do(t, "POST", "/me/totp", map[string]string{"password": annaPass}, bearerOf(access)...)
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /me/totp = %d (Cache-Control %q) %s", r.status, r.header.Get("Cache-Control"), r.body)
	}
	m := r.json(t)
	secret, _ := m["secret"].(string)
	if u, _ := m["otpauthUrl"].(string); !strings.HasPrefix(u, "otpauth://totp/") || !strings.Contains(u, "secret="+secret) {
		t.Errorf("otpauthUrl = %q", u)
	}
	qr, _ := m["qrCode"].(string)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(qr, "data:image/png;base64,"))
	if !strings.HasPrefix(qr, "data:image/png;base64,") || err != nil {
		t.Fatalf("qrCode %.40q... is not a base64 data:image/png URL (%v)", qr, err)
	}
	if img, err := png.Decode(bytes.NewReader(raw)); err != nil || img.Bounds().Dx() < 200 {
		t.Errorf("qrCode does not decode as a PNG of at least 200 px: %v", err)
	}
	// Pending until confirmed: the password alone still signs in.
	s.login(t, "anna", annaPass)
	if st := s.do(t, "GET", "/me/totp", nil, bearerOf(access)...).json(t)["enabled"]; st != false {
		t.Errorf("GET /me/totp while pending: enabled = %v", st)
	}

	wantError(t, s.do(t, "POST", "/me/totp/confirm", map[string]string{"code": s.code(t, secret, -5*time.Minute)}, bearerOf(access)...), 400, "invalid_request")
	wantError(t, s.do(t, "POST", "/me/totp/confirm", map[string]string{}, bearerOf(access)...), 400, "invalid_request")
	r = s.do(t, "POST", "/me/totp/confirm", map[string]string{"code": s.code(t, secret, 0)}, bearerOf(access)...)
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /me/totp/confirm = %d %s", r.status, r.body)
	}
	if codes := r.json(t)["recoveryCodes"].([]any); len(codes) != 10 {
		t.Errorf("%d recovery codes, want 10", len(codes))
	}
	wantError(t, s.do(t, "POST", "/me/totp", map[string]string{"password": annaPass}, bearerOf(access)...), 409, "conflict")
	st := s.do(t, "GET", "/me/totp", nil, bearerOf(access)...).json(t)
	if st["enabled"] != true || st["recoveryCodesLeft"] != float64(10) {
		t.Errorf("GET /me/totp = %v, want enabled with 10 codes left", st)
	}
	s.firstStep(t, "/login")
}

func TestLoginMFAOverHTTP(t *testing.T) {
	s := newAccountServer(t)
	access, _ := s.login(t, "anna", annaPass)
	secret, codes := s.enrolOverHTTP(t, access)

	tok := s.firstStep(t, "/login")
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"no code", map[string]string{"mfaToken": tok}, 400, "invalid_request"},
		{"a wrong code", map[string]string{"mfaToken": tok, "code": "000000"}, 401, "invalid_credentials"},
		{"an unknown mfaToken", map[string]string{"mfaToken": strings.Repeat("x", 43), "code": s.code(t, secret, 0)}, 401, "invalid_grant"},
		{"a body that is not JSON", "mfaToken=x", 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, s.do(t, "POST", "/login/mfa", tc.body), tc.status, tc.code)
		})
	}
	r := s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": s.code(t, secret, 0)})
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /login/mfa = %d %s", r.status, r.body)
	}
	if _, err := s.env.Verifier.Verify(t.Context(), r.json(t)["accessToken"].(string)); err != nil {
		t.Errorf("the access token: %v", err)
	}
	if st := s.refreshStatus(t, r.json(t)["refreshToken"].(string)); st != 200 {
		t.Errorf("the refresh token of the second step = %d", st)
	}
	wantError(t, s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": codes[0]}), 401, "invalid_grant")

	// The code just used is refused at the next login: accepted once.
	tok = s.firstStep(t, "/login")
	wantError(t, s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": s.code(t, secret, 0)}), 401, "invalid_credentials")
	// A recovery code, once.
	if st := s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": codes[0]}).status; st != 200 {
		t.Errorf("a recovery code = %d, want 200", st)
	}
	tok = s.firstStep(t, "/login")
	wantError(t, s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": codes[0]}), 401, "invalid_credentials")

	// The mfaToken expires.
	s.env.Clock.Advance(latchkey.MFAChallengeTTL)
	wantError(t, s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": codes[1]}), 401, "invalid_grant")
}

func TestLoginMFACodesThrottled(t *testing.T) {
	s := newAccountServer(t)
	access, _ := s.login(t, "anna", annaPass)
	secret, _ := s.enrolOverHTTP(t, access)
	tok := s.firstStep(t, "/login")
	for i := range latchkey.DefaultLoginRatePerUser.Burst {
		if st := s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": "111111"}).status; st != 401 {
			t.Fatalf("wrong code %d = %d, want 401", i+1, st)
		}
	}
	r := s.do(t, "POST", "/login/mfa", map[string]string{"mfaToken": tok, "code": s.code(t, secret, 0)})
	wantError(t, r, 429, "rate_limited")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestSessionLoginMFA(t *testing.T) {
	s := newAccountServer(t)
	access, _ := s.login(t, "anna", annaPass)
	secret, _ := s.enrolOverHTTP(t, access)

	tok := s.firstStep(t, "/session/login", page()...)
	body := map[string]string{"mfaToken": tok, "code": s.code(t, secret, 0)}
	wantError(t, s.do(t, "POST", "/session/login/mfa", body), 403, "forbidden")
	wantError(t, s.do(t, "POST", "/session/login/mfa", body, "Origin", "https://evil.example", "X-Latchkey-CSRF", "1"), 403, "forbidden")
	s.wantSessionBody(t, s.do(t, "POST", "/session/login/mfa", body, page()...))
}

func TestDisableTOTPOverHTTP(t *testing.T) {
	s := newAccountServer(t)
	access, _ := s.login(t, "anna", annaPass)
	admin, _ := s.login(t, "john", "password123admin")
	secret, codes := s.enrolOverHTTP(t, access)

	wantError(t, s.do(t, "DELETE", "/me/totp", map[string]string{"password": "wrong password", "code": s.code(t, secret, 0)}, bearerOf(access)...), 401, "invalid_credentials")
	wantError(t, s.do(t, "DELETE", "/me/totp", map[string]string{"password": annaPass, "code": "123456"}, bearerOf(access)...), 401, "invalid_credentials")
	wantError(t, s.do(t, "DELETE", "/me/totp", map[string]string{"password": annaPass}, bearerOf(access)...), 400, "invalid_request")
	if r := s.do(t, "DELETE", "/me/totp", map[string]string{"password": annaPass, "code": codes[5]}, bearerOf(access)...); r.status != 204 {
		t.Fatalf("DELETE /me/totp = %d %s", r.status, r.body)
	}
	s.login(t, "anna", annaPass)
	wantError(t, s.do(t, "DELETE", "/me/totp", map[string]string{"password": annaPass, "code": codes[6]}, bearerOf(access)...), 404, "not_found")

	// The admin's removal.
	s.enrolOverHTTP(t, access)
	id := s.userID(t, "anna")
	wantError(t, s.do(t, "DELETE", "/admin/users/"+id+"/totp", nil, bearerOf(access)...), 403, "insufficient_role")
	wantError(t, s.do(t, "DELETE", "/admin/users/0190d6a0-0000-7000-8000-000000000000/totp", nil, bearerOf(admin)...), 404, "not_found")
	if r := s.do(t, "DELETE", "/admin/users/"+id+"/totp", nil, bearerOf(admin)...); r.status != 204 {
		t.Fatalf("DELETE /admin/users/{id}/totp = %d %s", r.status, r.body)
	}
	s.login(t, "anna", annaPass)
}

func TestAdminResetPasswordOverHTTP(t *testing.T) {
	s := newAccountServer(t)
	access, refresh := s.login(t, "anna", annaPass)
	admin, _ := s.login(t, "john", "password123admin")
	id := s.userID(t, "anna")
	path := "/admin/users/" + id + "/password"

	wantError(t, s.do(t, "POST", path, map[string]string{"password": "a new password"}), 401, "invalid_token")
	wantError(t, s.do(t, "POST", path, map[string]string{"password": "a new password"}, bearerOf(access)...), 403, "insufficient_role")
	wantError(t, s.do(t, "POST", path, map[string]string{"password": "short"}, bearerOf(admin)...), 400, "invalid_request")
	wantError(t, s.do(t, "POST", "/admin/users/0190d6a0-0000-7000-8000-000000000000/password", map[string]string{"password": "a new password"}, bearerOf(admin)...), 404, "not_found")
	if r := s.do(t, "POST", path, map[string]string{"password": "a new password"}, bearerOf(admin)...); r.status != 204 {
		t.Fatalf("POST %s = %d %s", path, r.status, r.body)
	}
	wantError(t, s.do(t, "GET", "/me", nil, bearerOf(access)...), 401, "invalid_token")
	if st := s.refreshStatus(t, refresh); st != 401 {
		t.Errorf("anna's refresh after the reset = %d, want 401", st)
	}
	wantError(t, s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": annaPass}), 401, "invalid_credentials")
	s.login(t, "anna", "a new password")
}

// TestAccountHostileBodies runs the shared hostile-body table against
// every account-security endpoint that reads a body: 400, 413 or 415 by
// the contract's common rules, never a 500, and nothing changes.
func TestAccountHostileBodies(t *testing.T) {
	s := newAccountServer(t)
	access, _ := s.login(t, "anna", annaPass)
	admin, _ := s.login(t, "john", "password123admin")
	id := s.userID(t, "anna")
	endpoints := []struct{ method, path, bearer string }{
		{"POST", "/login/mfa", ""},
		{"POST", "/session/login/mfa", ""},
		{"POST", "/me/password", access},
		{"POST", "/me/totp", access},
		{"POST", "/me/totp/confirm", access},
		{"DELETE", "/me/totp", access},
		{"POST", "/admin/users/" + id + "/password", admin},
	}
	for _, c := range decodetest.Cases(t) {
		if c.Status == 0 {
			continue
		}
		for _, ep := range endpoints {
			t.Run(c.Name+" "+ep.method+" "+ep.path, func(t *testing.T) {
				headers := []string{"Content-Type", c.ContentType}
				if ep.bearer != "" {
					headers = append(headers, bearerOf(ep.bearer)...)
				}
				if ep.path == "/session/login/mfa" {
					headers = append(headers, page()...)
				}
				wantError(t, s.do(t, ep.method, ep.path, string(c.Body), headers...), c.Status, c.Code)
			})
		}
	}
	if on, _, err := s.svc.TOTPStatus(t.Context(), id); err != nil || on {
		t.Errorf("TOTP after the hostile bodies: on=%v, %v", on, err)
	}
	s.login(t, "anna", annaPass) // the password is unchanged
}
