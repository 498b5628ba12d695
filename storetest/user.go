package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func testCreateUserRoundTrip(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	want := &latchkey.User{
		ID:           "u1",
		Username:     "John.Doe@example",
		Role:         latchkey.RoleAdmin,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		Disabled:     true,
		CreatedAt:    t0,
	}
	if err := s.CreateUser(ctx, want); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	got, err := s.UserByID(ctx, "u1")
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkUser(t, got, want)
}

func testUserByIDNotFound(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	if _, err := s.UserByID(t.Context(), "u2"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UserByID(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.UserByUsername(t.Context(), "bob"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UserByUsername(unknown) error = %v, want ErrNotFound", err)
	}
}

func testCreateUserDuplicateID(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	err := s.CreateUser(t.Context(), newTestUser("u1", "bob"))
	if !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("CreateUser(duplicate id) error = %v, want ErrConflict", err)
	}
	if _, err := s.UserByUsername(t.Context(), "bob"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("the refused user was stored: UserByUsername error = %v, want ErrNotFound", err)
	}
}

func testCreateUserUsernameTakenAnyCase(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u0", "John")
	tests := []struct {
		name     string
		username string
	}{
		{"same case", "John"},
		{"lower case", "john"},
		{"upper case", "JOHN"},
		{"mixed case", "jOhN"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := string(rune('a' + i))
			err := s.CreateUser(t.Context(), newTestUser(id, tc.username))
			if !errors.Is(err, latchkey.ErrConflict) {
				t.Errorf("CreateUser(%q) after %q error = %v, want ErrConflict", tc.username, "John", err)
			}
		})
	}
	// A different name is still free.
	mustCreateUser(t, s, "u1", "Johnny")
}

func testUserByUsernameIgnoresCase(t *testing.T, s latchkey.Store) {
	want := mustCreateUser(t, s, "u1", "John")
	mustCreateUser(t, s, "u2", "johnny")
	tests := []struct {
		name   string
		lookup string
	}{
		{"as registered", "John"},
		{"lower case", "john"},
		{"upper case", "JOHN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.UserByUsername(t.Context(), tc.lookup)
			if err != nil {
				t.Fatalf("UserByUsername(%q): %v", tc.lookup, err)
			}
			// The username comes back as registered, not folded.
			checkUser(t, got, want)
		})
	}
	if _, err := s.UserByUsername(t.Context(), "Joh"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UserByUsername(prefix) error = %v, want ErrNotFound", err)
	}
}

func testUpdateUser(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	orig := mustCreateUser(t, s, "u1", "alice")
	other := mustCreateUser(t, s, "u2", "bob")

	upd := *orig
	upd.Role = latchkey.RoleAdmin
	upd.Disabled = true
	// These never change, whatever the caller passes: the password
	// hash has SetPassword, so that a stale read of the user written back
	// by an admin's change cannot undo a password change, nor the other
	// way round.
	upd.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3"
	upd.Username = "mallory"
	upd.CreatedAt = t0.Add(time.Hour)
	if err := s.UpdateUser(ctx, &upd); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}

	got, err := s.UserByID(ctx, "u1")
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	want := *orig
	want.Role, want.Disabled = upd.Role, upd.Disabled
	checkUser(t, got, &want)
	if _, err := s.UserByUsername(ctx, "mallory"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UpdateUser changed the username: UserByUsername(new) error = %v", err)
	}

	// Writing the same values again is not "not found".
	if err := s.UpdateUser(ctx, &upd); err != nil {
		t.Errorf("UpdateUser(unchanged): %v", err)
	}

	// Other users are untouched.
	got, err = s.UserByID(ctx, "u2")
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	checkUser(t, got, other)
}

func testUpdateUserNotFound(t *testing.T, s latchkey.Store) {
	err := s.UpdateUser(t.Context(), newTestUser("nobody", "nobody"))
	if !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("UpdateUser(unknown) error = %v, want ErrNotFound", err)
	}
}

func testListUsersPagesByID(t *testing.T, s latchkey.Store) {
	// Inserted out of order, so that insertion order cannot pass for id order.
	for _, id := range []string{"u03", "u01", "u05", "u02", "u04"} {
		mustCreateUser(t, s, id, "name-"+id)
	}
	tests := []struct {
		name    string
		afterID string
		limit   int
		want    []string
	}{
		{"first page", "", 2, []string{"u01", "u02"}},
		{"middle page", "u02", 2, []string{"u03", "u04"}},
		{"last short page", "u04", 2, []string{"u05"}},
		{"past the end", "u05", 2, nil},
		{"cursor between ids", "u025", 2, []string{"u03", "u04"}},
		{"limit above count", "", 100, []string{"u01", "u02", "u03", "u04", "u05"}},
		{"limit one", "u01", 1, []string{"u02"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			users, err := s.ListUsers(t.Context(), tc.afterID, tc.limit)
			if err != nil {
				t.Fatalf("ListUsers(%q, %d): %v", tc.afterID, tc.limit, err)
			}
			if got := ids(users, userID); !slices.Equal(got, tc.want) {
				t.Errorf("ListUsers(%q, %d) = %v, want %v", tc.afterID, tc.limit, got, tc.want)
			}
		})
	}

	// Walking every page yields every user once.
	var all []string
	after := ""
	for range 10 {
		page, err := s.ListUsers(t.Context(), after, 2)
		if err != nil {
			t.Fatalf("ListUsers: %v", err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, ids(page, userID)...)
		after = page[len(page)-1].ID
	}
	if want := []string{"u01", "u02", "u03", "u04", "u05"}; !slices.Equal(all, want) {
		t.Errorf("paging through ListUsers = %v, want %v", all, want)
	}
}

// testRefusedUserNotStored checks that a CreateUser refused for a taken
// username leaves nothing behind.
func testRefusedUserNotStored(t *testing.T, s latchkey.Store) {
	if all, err := s.ListUsers(t.Context(), "", 10); err != nil || len(all) != 0 {
		t.Fatalf("ListUsers(empty) = %d users, %v; want 0, nil", len(all), err)
	}
	mustCreateUser(t, s, "u1", "alice")
	mustCreateUser(t, s, "u2", "bob")
	mustCreateUser(t, s, "u3", "carol")
	s.CreateUser(t.Context(), newTestUser("u4", "ALICE")) // refused: not stored
	if all, err := s.ListUsers(t.Context(), "", 10); err != nil || len(all) != 3 {
		t.Errorf("ListUsers = %d users, %v; want 3, nil", len(all), err)
	}
}

func testSetPassword(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	orig := mustCreateUser(t, s, "u1", "alice")
	mustCreateUser(t, s, "u2", "bob")
	for _, id := range []string{"a1", "a2", "a3"} {
		mustCreateSession(t, s, newTestSession(id, "u1"))
	}
	mustCreateSession(t, s, newTestSession("b1", "u2"))
	for _, c := range []string{"m1", "m2"} {
		if err := s.CreateMFAChallenge(ctx, &latchkey.MFAChallenge{Hash: hash(c), UserID: "u1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMFAChallenge(ctx, &latchkey.MFAChallenge{Hash: hash("mb"), UserID: "u2", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// Alone (a hash upgraded at login): nothing else changes.
	n, err := s.SetPassword(ctx, "u1", "hash one", nil)
	if err != nil || n != 0 {
		t.Fatalf("SetPassword(no end) = %d, %v; want 0, nil", n, err)
	}
	got, _ := s.UserByID(ctx, "u1")
	want := *orig
	want.PasswordHash = "hash one"
	checkUser(t, got, &want)
	if mustSession(t, s, "a1").Revoked() {
		t.Error("SetPassword without end revoked a session")
	}
	if _, err := s.MFAChallenge(ctx, hash("m1")); err != nil {
		t.Errorf("SetPassword without end deleted a challenge: %v", err)
	}

	// With end: the other sessions and every challenge of the user go.
	at := t0.Add(time.Hour)
	n, err = s.SetPassword(ctx, "u1", "hash two", &latchkey.EndSessions{Except: "a2", At: at, Reason: "password changed"})
	if err != nil || n != 2 {
		t.Fatalf("SetPassword(end, except a2) = %d, %v; want 2, nil", n, err)
	}
	if got, _ := s.UserByID(ctx, "u1"); got.PasswordHash != "hash two" {
		t.Errorf("PasswordHash = %q", got.PasswordHash)
	}
	for id, revoked := range map[string]bool{"a1": true, "a2": false, "a3": true, "b1": false} {
		got := mustSession(t, s, id)
		if got.Revoked() != revoked || revoked && (got.RevokeReason != "password changed" || !got.RevokedAt.Equal(at)) {
			t.Errorf("session %s: revoked %v (%q at %v), want revoked %v", id, got.Revoked(), got.RevokeReason, got.RevokedAt, revoked)
		}
	}
	for c, kept := range map[string]bool{"m1": false, "m2": false, "mb": true} {
		if _, err := s.MFAChallenge(ctx, hash(c)); (err == nil) != kept {
			t.Errorf("challenge %s kept = %v, want %v", c, err == nil, kept)
		}
	}
	if _, err := s.SetPassword(ctx, "nobody", "x", &latchkey.EndSessions{At: at}); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SetPassword(unknown user) = %v, want ErrNotFound", err)
	}
}
