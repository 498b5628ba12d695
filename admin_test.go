package latchkey_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// as is u acting as an admin from a test client.
func as(u *latchkey.User) latchkey.Actor {
	return latchkey.Actor{UserID: u.ID, Client: latchkey.Client{IP: "192.0.2.9", UserAgent: "admin test"}}
}

// The admin operations below HTTP: the rules live in the Service, so they
// are proven here, and server/admin_test.go only checks the wire.

func TestAdminChecksRoleInDatabase(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	other := e.MustUser(t, "mary", "password123admin", latchkey.RoleAdmin)
	member := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)

	if _, _, err := e.Service.ListUsers(ctx, as(member), "", 0); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("ListUsers by a member: %v, want ErrNotAdmin", err)
	}
	if _, _, err := e.Service.ListUsers(ctx, latchkey.Actor{UserID: "0190d6a0-0000-7000-8000-000000000000"}, "", 0); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("ListUsers by an unknown user: %v, want ErrNotAdmin", err)
	}
	// Demoted by another admin: the old admin loses admin power at once.
	member2 := latchkey.RoleMember
	if _, err := e.Service.UpdateUser(ctx, as(other), admin.ID, latchkey.UserUpdate{Role: &member2}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.AdminCreateUser(ctx, as(admin), "eve", "password123eve", latchkey.RoleAdmin); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("AdminCreateUser by a demoted admin: %v, want ErrNotAdmin", err)
	}
	// Disabled: the same.
	yes := true
	if _, err := e.Service.UpdateUser(ctx, as(admin), other.ID, latchkey.UserUpdate{Disabled: &yes}); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("UpdateUser by a demoted admin: %v, want ErrNotAdmin", err)
	}
}

func TestAdminUpdateUser(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	yes, no := true, false
	adminRole, memberRole, bogus := latchkey.RoleAdmin, latchkey.RoleMember, latchkey.Role("root")

	tests := []struct {
		name    string
		id      string
		upd     latchkey.UserUpdate
		wantErr error
	}{
		{"self demotion", admin.ID, latchkey.UserUpdate{Role: &memberRole}, latchkey.ErrSelfLockout},
		{"self disable", admin.ID, latchkey.UserUpdate{Disabled: &yes}, latchkey.ErrSelfLockout},
		{"unknown id", "0190d6a0-0000-7000-8000-000000000000", latchkey.UserUpdate{Disabled: &yes}, latchkey.ErrUserNotFound},
		{"not an id", "../etc/passwd", latchkey.UserUpdate{Disabled: &yes}, latchkey.ErrUserNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.Service.UpdateUser(ctx, as(admin), tc.id, tc.upd); !errors.Is(err, tc.wantErr) {
				t.Errorf("UpdateUser = %v, want %v", err, tc.wantErr)
			}
		})
	}
	var verr *latchkey.ValidationError
	if _, err := e.Service.UpdateUser(ctx, as(admin), anna.ID, latchkey.UserUpdate{}); !errors.As(err, &verr) {
		t.Errorf("empty update: %v, want a ValidationError", err)
	}
	if _, err := e.Service.UpdateUser(ctx, as(admin), anna.ID, latchkey.UserUpdate{Role: &bogus}); !errors.As(err, &verr) || verr.Field != "role" {
		t.Errorf("unknown role: %v, want a ValidationError on role", err)
	}
	// A self-update that keeps admin power is allowed.
	if _, err := e.Service.UpdateUser(ctx, as(admin), admin.ID, latchkey.UserUpdate{Role: &adminRole, Disabled: &no}); err != nil {
		t.Errorf("self update keeping admin: %v", err)
	}

	// Disabling revokes every session; enabling again does not bring them back.
	p := e.MustLogin(t, "anna", "password123member")
	e.MustLogin(t, "anna", "password123member")
	u, err := e.Service.UpdateUser(ctx, as(admin), anna.ID, latchkey.UserUpdate{Disabled: &yes})
	if err != nil || !u.Disabled {
		t.Fatalf("disable = %+v, %v", u, err)
	}
	if live, err := e.Service.UserSessions(ctx, as(admin), anna.ID); err != nil || len(live) != 0 {
		t.Errorf("sessions after disable = %d, %v; want 0", len(live), err)
	}
	if _, err := e.Service.UpdateUser(ctx, as(admin), anna.ID, latchkey.UserUpdate{Disabled: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.Refresh(ctx, p.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("refresh of a session ended by disabling, after re-enabling: %v, want ErrInvalidGrant", err)
	}
}

func TestAdminListUsersPaging(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	for _, name := range []string{"u1xx", "u2xx", "u3xx", "u4xx"} {
		e.MustUser(t, name, "password123member", latchkey.RoleMember)
	}
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		users, next, err := e.Service.ListUsers(ctx, as(admin), cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			seen = append(seen, u.Username)
		}
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	if want := "john u1xx u2xx u3xx u4xx"; strings.Join(seen, " ") != want {
		t.Errorf("pages = %q, want %q (oldest first, each once)", strings.Join(seen, " "), want)
	}

	var verr *latchkey.ValidationError
	for _, tc := range []struct {
		name, cursor string
		limit        int
	}{
		{"limit too large", "", latchkey.MaxPageSize + 1},
		{"negative limit", "", -1},
		{"forged cursor", "' OR 1=1 --", 10},
	} {
		if _, _, err := e.Service.ListUsers(ctx, as(admin), tc.cursor, tc.limit); !errors.As(err, &verr) {
			t.Errorf("%s: %v, want a ValidationError", tc.name, err)
		}
	}
}

func TestAdminSessions(t *testing.T) {
	e := newTestService(t, func(c *latchkey.Config) { c.RefreshIdleTTL = time.Hour })
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	old := e.MustLogin(t, "anna", "password123member")
	e.Clock.Advance(59 * time.Minute)
	recent := e.MustLogin(t, "anna", "password123member")
	e.Clock.Advance(2 * time.Minute) // the first session is now idle past its TTL

	live, err := e.Service.UserSessions(ctx, as(admin), anna.ID)
	if err != nil || len(live) != 1 {
		t.Fatalf("UserSessions = %d, %v; want only the session still live", len(live), err)
	}
	if _, err := e.Service.UserSessions(ctx, as(anna), anna.ID); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("UserSessions by a member: %v, want ErrNotAdmin", err)
	}
	if _, err := e.Service.UserSessions(ctx, as(admin), "0190d6a0-0000-7000-8000-000000000000"); !errors.Is(err, latchkey.ErrUserNotFound) {
		t.Errorf("UserSessions of an unknown user: %v, want ErrUserNotFound", err)
	}

	if err := e.Service.RevokeUserSessions(ctx, as(admin), anna.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*latchkey.TokenPair{old, recent} {
		if _, err := e.Service.Refresh(ctx, p.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
			t.Errorf("refresh after RevokeUserSessions: %v, want ErrInvalidGrant", err)
		}
	}
	// Signed out everywhere, not disabled: anna can log in again.
	e.MustLogin(t, "anna", "password123member")
	if err := e.Service.RevokeUserSessions(ctx, as(admin), "not-an-id"); !errors.Is(err, latchkey.ErrUserNotFound) {
		t.Errorf("RevokeUserSessions of a bad id: %v, want ErrUserNotFound", err)
	}
}

// TestOperator: the command line's Actor passes the role check without a
// user, every other rule still holds, and each change is audited as made
// by the command line.
func TestOperator(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	op := latchkey.Operator()
	member := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)

	u, err := e.Service.AdminCreateUser(ctx, op, "john", "password123admin", latchkey.RoleAdmin)
	if err != nil {
		t.Fatalf("AdminCreateUser by the operator: %v", err)
	}
	var verr *latchkey.ValidationError
	if _, err := e.Service.AdminCreateUser(ctx, op, "x", "password123admin", latchkey.RoleAdmin); !errors.As(err, &verr) {
		t.Errorf("a bad username from the operator: %v, want a ValidationError", err)
	}
	if _, err := e.Service.AdminCreateUser(ctx, op, "JOHN", "password123admin", latchkey.RoleAdmin); !errors.Is(err, latchkey.ErrUsernameTaken) {
		t.Errorf("a taken username from the operator: %v, want ErrUsernameTaken", err)
	}
	// The operator may demote the last admin: that is its job when the
	// admin account is the problem.
	memberRole := latchkey.RoleMember
	if _, err := e.Service.UpdateUser(ctx, op, u.ID, latchkey.UserUpdate{Role: &memberRole}); err != nil {
		t.Errorf("operator demotes the only admin: %v", err)
	}
	if users, _, err := e.Service.ListUsers(ctx, op, "", 0); err != nil || len(users) != 2 {
		t.Errorf("ListUsers by the operator = %d users, %v", len(users), err)
	}
	e.MustLogin(t, "anna", "password123member")
	if err := e.Service.RevokeUserSessions(ctx, op, member.ID); err != nil {
		t.Fatal(err)
	}
	// A zero Actor is not the operator: it is a user that does not exist.
	if _, _, err := e.Service.ListUsers(ctx, latchkey.Actor{}, "", 0); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("ListUsers by the zero Actor: %v, want ErrNotAdmin", err)
	}

	events, _, err := e.Service.ListAudit(ctx, op, latchkey.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[latchkey.AuditType]bool{latchkey.AuditUserCreated: false, latchkey.AuditUserUpdated: false, latchkey.AuditSessionsRevoked: false}
	for _, ev := range events {
		if _, ok := want[ev.Type]; ok {
			want[ev.Type] = true
			if !strings.HasSuffix(ev.Detail, "by the command line") {
				t.Errorf("%s detail %q does not say the command line made it", ev.Type, ev.Detail)
			}
		}
	}
	for typ, seen := range want {
		if !seen {
			t.Errorf("no %s event", typ)
		}
	}
}

// TestResetPassword: the new password works and the old does not, every
// session of the user ends (refresh tokens and, through the generation,
// access tokens), the policy applies, only an admin or the operator may,
// and one password_reset event records it.
func TestResetPassword(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	p1 := e.MustLogin(t, "anna", "password123member")
	p2 := e.MustLogin(t, "anna", "password123member")

	if err := e.Service.ResetPassword(ctx, as(anna), anna.ID, "a new password"); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("reset by a member: %v, want ErrNotAdmin", err)
	}
	var verr *latchkey.ValidationError
	if err := e.Service.ResetPassword(ctx, as(admin), anna.ID, "short"); !errors.As(err, &verr) || verr.Field != "password" {
		t.Errorf("a short password: %v, want a ValidationError on password", err)
	}
	if err := e.Service.ResetPassword(ctx, as(admin), "0190d6a0-0000-7000-8000-000000000000", "a new password"); !errors.Is(err, latchkey.ErrUserNotFound) {
		t.Errorf("an unknown user: %v, want ErrUserNotFound", err)
	}
	before, _ := e.Store.UserByID(ctx, anna.ID)

	if err := e.Service.ResetPassword(ctx, as(admin), anna.ID, "a new password"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.Login(ctx, "anna", "password123member", latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("login with the old password: %v, want ErrInvalidCredentials", err)
	}
	e.MustLogin(t, "anna", "a new password")
	for _, p := range []*latchkey.TokenPair{p1, p2} {
		if _, err := e.Service.Refresh(ctx, p.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
			t.Errorf("refresh of a session from before the reset: %v, want ErrInvalidGrant", err)
		}
	}
	after, _ := e.Store.UserByID(ctx, anna.ID)
	if after.Generation <= before.Generation {
		t.Errorf("generation %d after the reset, %d before: access tokens of before are not revoked", after.Generation, before.Generation)
	}

	// The operator may too, audited as the command line.
	if err := e.Service.ResetPassword(ctx, latchkey.Operator(), anna.ID, "yet another one"); err != nil {
		t.Fatal(err)
	}
	events, _, err := e.Service.ListAudit(ctx, as(admin), latchkey.AuditQuery{Type: latchkey.AuditPasswordReset})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].UserID != anna.ID ||
		events[0].Detail != "1 sessions ended, by the command line" || events[1].Detail != "2 sessions ended, by admin "+admin.ID {
		for _, ev := range events {
			t.Logf("%s %s %q", ev.Type, ev.UserID, ev.Detail)
		}
		t.Errorf("%d password_reset events, want the two resets, newest first, each naming who", len(events))
	}
}
