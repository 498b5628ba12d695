package storetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func testBumpGeneration(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "u1", "alice")
	if u, _ := s.UserByID(ctx, "u1"); u.Generation != 0 {
		t.Fatalf("a new user's Generation = %d, want 0", u.Generation)
	}
	const n = 20
	var wg sync.WaitGroup
	gens := make([]int64, n)
	for i := range n {
		wg.Go(func() {
			g, err := s.BumpGeneration(ctx, "u1", t0.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Error(err)
			}
			gens[i] = g
		})
	}
	wg.Wait()
	slices.Sort(gens)
	for i, g := range gens {
		if g != int64(i+1) {
			t.Fatalf("concurrent bumps returned %v; want each of 1..%d once", gens, n)
		}
	}
	u, err := s.UserByID(ctx, "u1")
	if err != nil || u.Generation != n {
		t.Errorf("Generation after %d bumps = %d, %v", n, u.Generation, err)
	}
	// UpdateUser leaves the generation alone.
	u.Role = latchkey.RoleAdmin
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.UserByUsername(ctx, "ALICE"); u.Generation != n {
		t.Errorf("Generation after UpdateUser = %d, want %d", u.Generation, n)
	}
	if _, err := s.BumpGeneration(ctx, "nobody", t0); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("BumpGeneration(unknown) = %v, want ErrNotFound", err)
	}
}

func testRevocations(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "u1", "alice")
	mustCreateUser(t, s, "u2", "bob")
	mustCreateUser(t, s, "u3", "carol")
	for _, id := range []string{"s1", "s2", "s3", "s4"} {
		mustCreateSession(t, s, newTestSession(id, "u1"))
	}
	since := t0.Add(time.Hour)
	for _, r := range []struct {
		id string
		at time.Time
	}{{"s1", since.Add(-time.Microsecond)}, {"s3", since.Add(2 * time.Minute)}, {"s2", since}} {
		if err := s.RevokeSession(ctx, r.id, r.at, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.BumpGeneration(ctx, "u1", since.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		id string
		at time.Time
	}{{"u3", since.Add(time.Minute)}, {"u2", since}, {"u2", since.Add(3 * time.Minute)}} {
		if _, err := s.BumpGeneration(ctx, b.id, b.at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Revocations(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Sessions) != 2 || got.Sessions[0].ID != "s2" || got.Sessions[1].ID != "s3" {
		t.Fatalf("Sessions = %+v; want s2 then s3 (s1 was revoked before the window, s4 never)", got.Sessions)
	}
	checkTime(t, "RevokedAt", got.Sessions[0].RevokedAt, since)
	if len(got.Users) != 2 || got.Users[0].UserID != "u3" || got.Users[1].UserID != "u2" ||
		got.Users[1].Generation != 2 || got.Users[0].Generation != 1 {
		t.Fatalf("Users = %+v; want u3 (generation 1) then u2 (generation 2, its latest bump)", got.Users)
	}
	checkTime(t, "Users[1].At", got.Users[1].At, since.Add(3*time.Minute))
	if got, err := s.Revocations(ctx, since.Add(time.Hour)); err != nil || len(got.Sessions)+len(got.Users) != 0 {
		t.Errorf("Revocations(later) = %+v, %v; want nothing", got, err)
	}
}
