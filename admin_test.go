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
