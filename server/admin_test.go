package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey"
)

func newAdminServer(t *testing.T) (s *testServer, admin, member string) {
	t.Helper()
	s = newTestServer(t, serverOpts{})
	s.mustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
	admin, _ = s.login(t, "john", "password123admin")
	member, _ = s.login(t, "anna", "password123member")
	return s, admin, member
}

func (s *testServer) userID(t *testing.T, name string) string {
	t.Helper()
	u, err := s.store.UserByUsername(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestAdminAccess(t *testing.T) {
	s, _, member := newAdminServer(t)
	id := s.userID(t, "anna")
	for _, rt := range []struct{ method, path string }{
		{"GET", "/admin/users"},
		{"POST", "/admin/users"},
		{"PATCH", "/admin/users/" + id},
		{"GET", "/admin/users/" + id + "/sessions"},
		{"DELETE", "/admin/users/" + id + "/sessions"},
	} {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			body := any(nil)
			if rt.method == "POST" || rt.method == "PATCH" {
				body = map[string]any{"role": "admin"}
			}
			wantError(t, s.do(t, rt.method, rt.path, body), 401, "invalid_token")
			wantError(t, s.do(t, rt.method, rt.path, body, "Authorization", "Bearer "+member), 403, "insufficient_role")
		})
	}
	// The member is still a member: nothing was changed by the refusals.
	if u, _ := s.store.UserByID(t.Context(), id); u.Role != latchkey.RoleMember {
		t.Errorf("role = %s", u.Role)
	}
}

func TestAdminListUsersPaging(t *testing.T) {
	s, admin, _ := newAdminServer(t)
	for _, name := range []string{"carol", "dave", "erin"} {
		s.mustUser(t, name, "password123", latchkey.RoleMember)
	}
	var seen []string
	cursor := ""
	for page := 0; page < 10; page++ {
		path := "/admin/users?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := s.do(t, "GET", path, nil, "Authorization", "Bearer "+admin)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var out struct {
			Users []struct {
				ID, Username, Role, CreatedAt string
				Disabled                      *bool
			}
			NextCursor *string
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Users) > 2 {
			t.Fatalf("page of %d with limit 2", len(out.Users))
		}
		for _, u := range out.Users {
			if u.Disabled == nil || u.CreatedAt == "" || u.Role == "" {
				t.Errorf("user %+v lacks fields", u)
			}
			seen = append(seen, u.Username)
		}
		if out.NextCursor == nil {
			if !strings.Contains(string(r.body), `"nextCursor":null`) {
				t.Errorf("last page should say nextCursor null: %s", r.body)
			}
			break
		}
		cursor = *out.NextCursor
	}
	if got := strings.Join(seen, ","); got != "john,anna,carol,dave,erin" {
		t.Errorf("users across pages = %s, want each once, oldest first", got)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "cursor=nonsense"} {
		wantError(t, s.do(t, "GET", "/admin/users?"+q, nil, "Authorization", "Bearer "+admin), 400, "invalid_request")
	}
}

func TestAdminCreateUser(t *testing.T) {
	s, admin, _ := newAdminServer(t)
	auth := []string{"Authorization", "Bearer " + admin}
	r := s.do(t, "POST", "/admin/users", map[string]string{"username": "root2", "password": "password123", "role": "admin"}, auth...)
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if m := r.json(t); m["role"] != "admin" || m["disabled"] != false || r.header.Get("Location") != "/admin/users/"+m["id"].(string) {
		t.Errorf("created %s, Location %q", r.body, r.header.Get("Location"))
	}
	s.login(t, "root2", "password123")
	wantError(t, s.do(t, "POST", "/admin/users", map[string]string{"username": "ROOT2", "password": "password123", "role": "member"}, auth...), 409, "conflict")
	wantError(t, s.do(t, "POST", "/admin/users", map[string]string{"username": "x1x", "password": "password123", "role": "owner"}, auth...), 400, "invalid_request")
	wantError(t, s.do(t, "POST", "/admin/users", map[string]string{"username": "x1x", "password": "password123"}, auth...), 400, "invalid_request")
}

func TestAdminDisableRevokesEverything(t *testing.T) {
	s, admin, _ := newAdminServer(t)
	auth := []string{"Authorization", "Bearer " + admin}
	annaAccess, annaRefresh := s.login(t, "anna", "password123member")
	id := s.userID(t, "anna")

	r := s.do(t, "PATCH", "/admin/users/"+id, map[string]any{"disabled": true}, auth...)
	if r.status != 200 || r.json(t)["disabled"] != true {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": annaRefresh}), 401, "invalid_grant")
	wantError(t, s.do(t, "GET", "/me", nil, "Authorization", "Bearer "+annaAccess), 401, "invalid_token")
	wantError(t, s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "password123member"}), 401, "invalid_credentials")

	if r := s.do(t, "PATCH", "/admin/users/"+id, map[string]any{"disabled": false}, auth...); r.status != 200 {
		t.Fatalf("enable: %d %s", r.status, r.body)
	}
	s.login(t, "anna", "password123member")
}

func TestAdminDemotionTakesEffectAtOnce(t *testing.T) {
	s, admin, _ := newAdminServer(t)
	auth := []string{"Authorization", "Bearer " + admin}
	id := s.userID(t, "anna")
	if r := s.do(t, "PATCH", "/admin/users/"+id, map[string]any{"role": "admin"}, auth...); r.status != 200 || r.json(t)["role"] != "admin" {
		t.Fatalf("promote: %d %s", r.status, r.body)
	}
	annaAdmin, _ := s.login(t, "anna", "password123member")
	if r := s.do(t, "GET", "/admin/users", nil, "Authorization", "Bearer "+annaAdmin); r.status != 200 {
		t.Fatalf("anna as admin: %d", r.status)
	}
	if r := s.do(t, "PATCH", "/admin/users/"+id, map[string]any{"role": "member"}, auth...); r.status != 200 {
		t.Fatalf("demote: %d %s", r.status, r.body)
	}
	// Her token still says admin; the database says otherwise.
	wantError(t, s.do(t, "GET", "/admin/users", nil, "Authorization", "Bearer "+annaAdmin), 403, "insufficient_role")
}

func TestAdminUpdateErrors(t *testing.T) {
	s, admin, _ := newAdminServer(t)
	auth := []string{"Authorization", "Bearer " + admin}
	self := s.userID(t, "john")
	anna := s.userID(t, "anna")
	wantError(t, s.do(t, "PATCH", "/admin/users/"+self, map[string]any{"role": "member"}, auth...), 403, "forbidden")
	wantError(t, s.do(t, "PATCH", "/admin/users/"+self, map[string]any{"disabled": true}, auth...), 403, "forbidden")
	wantError(t, s.do(t, "PATCH", "/admin/users/"+anna, map[string]any{}, auth...), 400, "invalid_request")
	wantError(t, s.do(t, "PATCH", "/admin/users/"+anna, map[string]any{"role": "owner"}, auth...), 400, "invalid_request")
	wantError(t, s.do(t, "PATCH", "/admin/users/"+anna, map[string]any{"disabled": "yes"}, auth...), 400, "invalid_request")
	wantError(t, s.do(t, "PATCH", "/admin/users/"+anna, map[string]any{"username": "x"}, auth...), 400, "invalid_request")
	wantError(t, s.do(t, "PATCH", "/admin/users/0190aaaa-0000-7000-8000-000000000000", map[string]any{"role": "admin"}, auth...), 404, "not_found")
	wantError(t, s.do(t, "PATCH", "/admin/users/not-an-id", map[string]any{"role": "admin"}, auth...), 404, "not_found")
	// Self-updates that change nothing harmful are fine.
	if r := s.do(t, "PATCH", "/admin/users/"+self, map[string]any{"role": "admin", "disabled": false}, auth...); r.status != 200 {
		t.Errorf("harmless self-update: %d %s", r.status, r.body)
	}
}

func TestAdminSessions(t *testing.T) {
	s, admin, _ := newAdminServer(t)
	auth := []string{"Authorization", "Bearer " + admin}
	id := s.userID(t, "anna")
	req, _ := http.NewRequest("POST", s.URL+"/login", strings.NewReader(`{"username":"anna","password":"password123member"}`))
	req.Header.Set("User-Agent", "latchkey-test/1.0")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tokens map[string]any
	json.NewDecoder(res.Body).Decode(&tokens)
	res.Body.Close()

	r := s.do(t, "GET", "/admin/users/"+id+"/sessions", nil, auth...)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var out struct {
		Sessions []map[string]string `json:"sessions"`
	}
	json.Unmarshal(r.body, &out)
	// One session from newAdminServer's login, one from this one.
	if len(out.Sessions) != 2 {
		t.Fatalf("sessions = %s", r.body)
	}
	newest := out.Sessions[0]
	if newest["userAgent"] != "latchkey-test/1.0" || newest["ip"] != "127.0.0.1" || newest["id"] == "" ||
		newest["createdAt"] == "" || newest["lastUsedAt"] == "" || newest["expiresAt"] <= newest["createdAt"] {
		t.Errorf("newest session = %v", newest)
	}

	if r := s.do(t, "DELETE", "/admin/users/"+id+"/sessions", nil, auth...); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	wantError(t, s.do(t, "POST", "/token", map[string]string{"refreshToken": tokens["refreshToken"].(string)}), 401, "invalid_grant")
	r = s.do(t, "GET", "/admin/users/"+id+"/sessions", nil, auth...)
	if strings.TrimSpace(string(r.body)) != `{"sessions":[]}` {
		t.Errorf("after revoke: %s", r.body)
	}
	// Revoking is not disabling: anna can log in again.
	s.login(t, "anna", "password123member")

	unknown := "0190aaaa-0000-7000-8000-000000000000"
	wantError(t, s.do(t, "GET", "/admin/users/"+unknown+"/sessions", nil, auth...), 404, "not_found")
	wantError(t, s.do(t, "DELETE", "/admin/users/"+unknown+"/sessions", nil, auth...), 404, "not_found")
}
