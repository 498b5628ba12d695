package metrics_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/metrics"
	"github.com/latchkey-dev/latchkey/server"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func post(t *testing.T, url string, body any, bearer string) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// TestSeriesMove drives a real auth server and checks that each series
// of the contract is there and counts what happened, with route patterns
// for labels and never a raw path.
func TestSeriesMove(t *testing.T) {
	m := metrics.New()
	e := latchkeytest.New(t, latchkeytest.Options{RealTime: true})
	e.Service.Audit().Observe(m.Audit)
	m.Keys(e.Keys)
	h, err := server.New(server.Config{Service: e.Service, Keys: e.Keys, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)

	post(t, srv.URL+"/login", map[string]string{"username": "anna", "password": "wrong-password"}, "")
	_, ok := post(t, srv.URL+"/login", map[string]string{"username": "anna", "password": "password123member"}, "")
	refresh := ok["refreshToken"].(string)
	post(t, srv.URL+"/token", map[string]string{"refreshToken": refresh}, "")
	post(t, srv.URL+"/token", map[string]string{"refreshToken": "not-a-token"}, "")
	post(t, srv.URL+"/logout/all", nil, "garbage.token.here")
	http.Get(srv.URL + "/no/such/path/0190d6a0-secret-looking")
	http.Get(srv.URL + "/admin/users/0190d6a0-0000-7000-8000-000000000001/sessions")

	out := scrape(t, m)
	for _, want := range []string{
		`latchkey_logins_total{outcome="failed"} 1`,
		`latchkey_logins_total{outcome="succeeded"} 1`,
		`latchkey_refreshes_total{outcome="succeeded"} 1`,
		`latchkey_refreshes_total{outcome="invalid_grant"} 1`,
		`latchkey_http_requests_total{code="200",route="POST /login",service="auth"} 1`,
		`latchkey_http_requests_total{code="401",route="POST /login",service="auth"} 1`,
		`latchkey_http_requests_total{code="404",route="unmatched",service="auth"} 1`,
		`route="GET /admin/users/{id}/sessions"`,
		`latchkey_token_refusals_total{reason="malformed",service="auth"} 1`,
		`latchkey_token_refusals_total{reason="missing",service="auth"} 1`,
		`latchkey_signing_keys{state="active"} 1`,
		`latchkey_signing_keys{state="next"} 1`,
		`latchkey_http_request_duration_seconds_bucket{route="POST /token",service="auth",le="+Inf"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, leak := range []string{"secret-looking", "0190d6a0-0000-7000-8000-000000000001", "anna", "password"} {
		if strings.Contains(out, leak) {
			t.Errorf("metrics hold %q: a raw path, an id or a name became a label", leak)
		}
	}

	// Reuse and revocations come from the audit log.
	_, p := post(t, srv.URL+"/login", map[string]string{"username": "anna", "password": "password123member"}, "")
	r1 := p["refreshToken"].(string)
	_, p = post(t, srv.URL+"/token", map[string]string{"refreshToken": r1}, "")
	post(t, srv.URL+"/token", map[string]string{"refreshToken": p["refreshToken"].(string)}, "")
	post(t, srv.URL+"/token", map[string]string{"refreshToken": r1}, "") // older than the previous: reuse
	out = scrape(t, m)
	for _, want := range []string{`latchkey_refreshes_total{outcome="reuse_detected"} 1`, `latchkey_revocations_total{cause="reuse"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The account-security revocations count by their own causes.
	_, here := post(t, srv.URL+"/login", map[string]string{"username": "anna", "password": "password123member"}, "")
	_, there := post(t, srv.URL+"/login", map[string]string{"username": "anna", "password": "password123member"}, "")
	c, err := e.Verifier.Verify(t.Context(), there["accessToken"].(string))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("DELETE", srv.URL+"/me/sessions/"+c.SessionID, nil)
	req.Header.Set("Authorization", "Bearer "+here["accessToken"].(string))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 204 {
		t.Fatalf("DELETE /me/sessions/{id}: %v %v", resp, err)
	}
	post(t, srv.URL+"/me/password", map[string]string{"currentPassword": "password123member", "newPassword": "a new password"}, here["accessToken"].(string))
	out = scrape(t, m)
	for _, want := range []string{`latchkey_revocations_total{cause="session_ended"} 1`, `latchkey_revocations_total{cause="password_changed"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
