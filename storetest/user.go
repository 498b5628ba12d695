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
	upd.PasswordHash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3"
	upd.Disabled = true
	// These never change, whatever the caller passes.
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
	want.Role, want.PasswordHash, want.Disabled = upd.Role, upd.PasswordHash, upd.Disabled
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
