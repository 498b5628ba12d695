package server

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// TestAuditEvents performs each action of the contract's audit list over
// HTTP and checks that it records exactly the events it should, with the
// user, session and client it concerns, and nothing more.
func TestAuditEvents(t *testing.T) {
	s := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) {
		c.LoginRatePerUser = latchkey.Rate{Burst: 2, Every: time.Hour}
	}})
	s.mustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	johnID := s.userID(t, "john")
	admin, _ := s.login(t, "john", "password123admin")
	seen := 0
	// since returns the events recorded after the previous call, oldest first.
	since := func() []*latchkey.AuditEvent {
		t.Helper()
		all, err := s.svc.Audit().List(t.Context(), latchkey.AuditQuery{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(all)
		out := all[seen:]
		seen = len(all)
		return out
	}
	since()

	ua := "audit-test-agent"
	type want struct {
		typ     latchkey.AuditType
		user    string // "anna", "john" or ""
		session bool   // the event names a session
		detail  string // a substring of the detail
	}
	var annaID string
	var annaRefresh, annaAccess string
	steps := []struct {
		name string
		do   func()
		want []want
	}{
		{"register", func() {
			r := s.do(t, "POST", "/register", map[string]string{"username": "anna", "password": "password123member"}, "User-Agent", ua)
			annaID = r.json(t)["id"].(string)
		}, []want{{latchkey.AuditRegistered, "anna", false, `"anna"`}}},
		{"login succeeded", func() {
			r := s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "password123member"}, "User-Agent", ua)
			m := r.json(t)
			annaAccess, annaRefresh = m["accessToken"].(string), m["refreshToken"].(string)
		}, []want{{latchkey.AuditLoginSucceeded, "anna", true, ""}}},
		{"refresh records nothing", func() {
			r := s.do(t, "POST", "/token", map[string]string{"refreshToken": annaRefresh})
			old := annaRefresh
			annaRefresh = r.json(t)["refreshToken"].(string)
			s.do(t, "POST", "/token", map[string]string{"refreshToken": old}) // within grace: a retry, not reuse
		}, nil},
		{"logout", func() {
			s.do(t, "POST", "/logout", map[string]string{"refreshToken": annaRefresh}, "User-Agent", ua)
			s.do(t, "POST", "/logout", map[string]string{"refreshToken": annaRefresh}) // idempotent: nothing new
		}, []want{{latchkey.AuditLogout, "anna", true, ""}}},
		{"logout all", func() {
			s.svc.Login(t.Context(), "anna", "password123member", latchkey.Client{IP: "192.0.2.5"})
			a, _ := s.login(t, "anna", "password123member")
			annaAccess = a
			s.do(t, "POST", "/logout/all", nil, "Authorization", "Bearer "+annaAccess)
		}, []want{{latchkey.AuditLoginSucceeded, "anna", true, ""}, {latchkey.AuditLoginSucceeded, "anna", true, ""},
			{latchkey.AuditLogoutAll, "anna", true, "2 sessions"}}},
		{"admin creates a user", func() {
			s.do(t, "POST", "/admin/users", map[string]string{"username": "mary", "password": "password123mary", "role": "member"},
				"Authorization", "Bearer "+admin)
		}, []want{{latchkey.AuditUserCreated, "", true, "by admin " + johnID}}},
		{"admin updates a user", func() {
			s.do(t, "PATCH", "/admin/users/"+annaID, map[string]any{"role": "admin"}, "Authorization", "Bearer "+admin)
			s.do(t, "PATCH", "/admin/users/"+annaID, map[string]any{"role": "admin"}, "Authorization", "Bearer "+admin) // no change: nothing new
		}, []want{{latchkey.AuditUserUpdated, "anna", true, "role member to admin"}}},
		{"admin revokes sessions", func() {
			s.do(t, "DELETE", "/admin/users/"+annaID+"/sessions", nil, "Authorization", "Bearer "+admin)
		}, []want{{latchkey.AuditSessionsRevoked, "anna", true, "by admin " + johnID}}},
		{"refresh token reuse", func() {
			_, r1 := s.login(t, "anna", "password123member")
			r := s.do(t, "POST", "/token", map[string]string{"refreshToken": r1})
			r2 := r.json(t)["refreshToken"].(string)
			s.do(t, "POST", "/token", map[string]string{"refreshToken": r2})
			s.do(t, "POST", "/token", map[string]string{"refreshToken": r1}) // older than the previous one: reuse
		}, []want{{latchkey.AuditLoginSucceeded, "anna", true, ""}, {latchkey.AuditRefreshReuseDetected, "anna", true, ""}}},
		{"key rotated", func() {
			if err := s.keys.Rotate(t.Context()); err != nil {
				t.Fatal(err)
			}
		}, []want{{latchkey.AuditKeyRotated, "", false, "now signing with"}}},
		// Last: anna is throttled from here on.
		{"wrong password", func() {
			s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "wrong-password"}, "User-Agent", ua)
		}, []want{{latchkey.AuditLoginFailed, "anna", false, "wrong password"}}},
		{"unknown user", func() {
			s.do(t, "POST", "/login", map[string]string{"username": "nobody", "password": "wrong-password"}, "User-Agent", ua)
		}, []want{{latchkey.AuditLoginFailed, "", false, `unknown username "nobody"`}}},
		{"throttled", func() {
			s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "wrong-password"}, "User-Agent", ua)
			s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "wrong-password"}, "User-Agent", ua)
		}, []want{{latchkey.AuditLoginFailed, "anna", false, ""}, {latchkey.AuditLoginThrottled, "", false, `"anna"`}}},
	}
	for _, st := range steps {
		st.do()
		got := since()
		if len(got) != len(st.want) {
			var types []string
			for _, e := range got {
				types = append(types, string(e.Type))
			}
			t.Errorf("%s: recorded %v; want %d events", st.name, types, len(st.want))
			continue
		}
		for i, w := range st.want {
			e := got[i]
			userID := map[string]string{"anna": annaID, "john": johnID, "": ""}[w.user]
			if w.typ == latchkey.AuditUserCreated {
				userID = e.UserID // the new user's id, not known before
			}
			switch {
			case e.Type != w.typ:
				t.Errorf("%s: event %d is %s, want %s", st.name, i, e.Type, w.typ)
			case e.UserID != userID:
				t.Errorf("%s: %s about user %q, want %q", st.name, e.Type, e.UserID, userID)
			case w.session != (e.SessionID != ""):
				t.Errorf("%s: %s session %q, want one: %v", st.name, e.Type, e.SessionID, w.session)
			case !strings.Contains(e.Detail, w.detail):
				t.Errorf("%s: %s detail %q lacks %q", st.name, e.Type, e.Detail, w.detail)
			case e.IP == "" && w.typ != latchkey.AuditKeyRotated:
				t.Errorf("%s: %s has no client address", st.name, e.Type)
			}
			for _, secret := range []string{"password123", "wrong-password", annaRefresh} {
				if secret != "" && strings.Contains(fmt.Sprint(*e), secret) {
					t.Errorf("%s: %s holds a secret: %+v", st.name, e.Type, *e)
				}
			}
		}
	}
}

// TestAdminAuditEndpoint: filters, paging and validation of GET
// /admin/audit, admins only.
func TestAdminAuditEndpoint(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	s.mustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
	admin, _ := s.login(t, "john", "password123admin")
	member, _ := s.login(t, "anna", "password123member")
	for range 3 {
		s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "wrong-password"})
	}
	annaID := s.userID(t, "anna")

	wantError(t, s.do(t, "GET", "/admin/audit", nil, "Authorization", "Bearer "+member), 403, "insufficient_role")
	wantError(t, s.do(t, "GET", "/admin/audit", nil), 401, "invalid_token")
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "type=nope", "user=../x", "cursor=abc"} {
		wantError(t, s.do(t, "GET", "/admin/audit?"+q, nil, "Authorization", "Bearer "+admin), 400, "invalid_request")
	}

	r := s.do(t, "GET", "/admin/audit?user="+annaID+"&type=login_failed&limit=2", nil, "Authorization", "Bearer "+admin)
	page := r.json(t)
	events := page["events"].([]any)
	if r.status != 200 || len(events) != 2 || page["nextCursor"] == nil || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("first page: %d %s", r.status, r.body)
	}
	for _, e := range events {
		m := e.(map[string]any)
		if m["type"] != "login_failed" || m["userId"] != annaID || m["ip"] == "" {
			t.Errorf("event %v", m)
		}
		if _, err := time.Parse(time.RFC3339, m["at"].(string)); err != nil {
			t.Errorf("at = %v", m["at"])
		}
	}
	r = s.do(t, "GET", "/admin/audit?user="+annaID+"&type=login_failed&limit=2&cursor="+page["nextCursor"].(string), nil, "Authorization", "Bearer "+admin)
	page = r.json(t)
	if events := page["events"].([]any); len(events) != 1 || page["nextCursor"] != nil {
		t.Errorf("second page: %s; want the third event and no cursor", r.body)
	}
}
