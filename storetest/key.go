package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func testSigningKeys(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys(empty) = %d keys, %v; want none, nil", len(keys), err)
	}

	// Every byte value, NUL and 0xff included, must survive.
	private := make([]byte, 256)
	for i := range private {
		private[i] = byte(i)
	}
	created := []*latchkey.SigningKey{
		{ID: "kid-mid", Alg: "EdDSA", Private: []byte{0x30, 0x2e, 0x02, 0x01, 0x00}, CreatedAt: t0.Add(-time.Hour)},
		{ID: "kid-new", Alg: "ES256", Private: private, CreatedAt: t0},
		{ID: "kid-old", Alg: "RS256", Private: []byte{0xff, 0x00, 0xff}, CreatedAt: t0.Add(-48 * time.Hour)},
	}
	for _, k := range created {
		if err := s.CreateSigningKey(ctx, k); err != nil {
			t.Fatalf("CreateSigningKey(%q): %v", k.ID, err)
		}
	}

	keys, err = s.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
	}
	if want := []string{"kid-new", "kid-mid", "kid-old"}; !slices.Equal(got, want) {
		t.Fatalf("SigningKeys order = %v, want newest first %v", got, want)
	}
	for _, k := range keys {
		i := slices.IndexFunc(created, func(c *latchkey.SigningKey) bool { return c.ID == k.ID })
		want := created[i]
		if k.Alg != want.Alg {
			t.Errorf("key %s: Alg = %q, want %q", k.ID, k.Alg, want.Alg)
		}
		checkBytes(t, "key "+k.ID+" Private", k.Private, want.Private)
		checkTime(t, "key "+k.ID+" CreatedAt", k.CreatedAt, want.CreatedAt)
	}
}

func testSigningKeyDuplicateID(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	k := &latchkey.SigningKey{ID: "kid", Alg: "ES256", Private: []byte("one"), CreatedAt: t0}
	if err := s.CreateSigningKey(ctx, k); err != nil {
		t.Fatalf("CreateSigningKey: %v", err)
	}
	dup := &latchkey.SigningKey{ID: "kid", Alg: "EdDSA", Private: []byte("two"), CreatedAt: t0.Add(time.Hour)}
	if err := s.CreateSigningKey(ctx, dup); !errors.Is(err, latchkey.ErrConflict) {
		t.Fatalf("CreateSigningKey(duplicate id) error = %v, want ErrConflict", err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 1 || string(keys[0].Private) != "one" {
		t.Errorf("after a refused duplicate, SigningKeys = %v, %v; want the first key only", keys, err)
	}
}

// testTimesRoundTripInUTC stores times through every kind of row and
// expects the same instants back, in UTC, to the microsecond.
func testTimesRoundTripInUTC(t *testing.T, s latchkey.Store) {
	tests := []struct {
		name string
		at   time.Time
	}{
		{"microseconds", t0},
		{"whole second", time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)},
		{"one microsecond past the epoch", time.Unix(0, 1000).UTC()},
		{"before the epoch", time.Date(1969, time.July, 20, 20, 17, 40, 123456000, time.UTC)},
		{"far future", time.Date(2999, time.December, 31, 23, 59, 59, 999999000, time.UTC)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			id := string(rune('a' + i))
			u := newTestUser("u"+id, "user-"+id)
			u.CreatedAt = tc.at
			if err := s.CreateUser(ctx, u); err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			got, err := s.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatalf("UserByID: %v", err)
			}
			checkTime(t, "User.CreatedAt", got.CreatedAt, tc.at)

			sess := newTestSession("s"+id, u.ID)
			sess.CreatedAt = tc.at
			sess.LastUsedAt = tc.at.Add(time.Microsecond)
			sess.ExpiresAt = tc.at.Add(2 * time.Microsecond)
			mustCreateSession(t, s, sess)
			checkSession(t, mustSession(t, s, sess.ID), sess)

			r := rotation(sess.ID, 1)
			r.At = tc.at.Add(3 * time.Microsecond)
			r.ExpiresAt = tc.at.Add(4 * time.Microsecond)
			if err := s.RotateRefreshToken(ctx, r); err != nil {
				t.Fatalf("RotateRefreshToken: %v", err)
			}
			revokedAt := tc.at.Add(5 * time.Microsecond)
			if err := s.RevokeSession(ctx, sess.ID, revokedAt, "test"); err != nil {
				t.Fatalf("RevokeSession: %v", err)
			}
			got2 := mustSession(t, s, sess.ID)
			checkTime(t, "Session.PreviousRetiredAt", got2.PreviousRetiredAt, r.At)
			checkTime(t, "Session.LastUsedAt", got2.LastUsedAt, r.At)
			checkTime(t, "Session.ExpiresAt", got2.ExpiresAt, r.ExpiresAt)
			checkTime(t, "Session.RevokedAt", got2.RevokedAt, revokedAt)

			k := &latchkey.SigningKey{ID: "k" + id, Alg: "ES256", Private: []byte{1}, CreatedAt: tc.at}
			if err := s.CreateSigningKey(ctx, k); err != nil {
				t.Fatalf("CreateSigningKey: %v", err)
			}
			keys, err := s.SigningKeys(ctx)
			if err != nil {
				t.Fatalf("SigningKeys: %v", err)
			}
			for _, got := range keys {
				if got.ID == k.ID {
					checkTime(t, "SigningKey.CreatedAt", got.CreatedAt, tc.at)
				}
			}
		})
	}
}

// testZeroTimesRoundTrip checks that "not set" stays not set: the zero
// time goes in and comes back as the zero time, not as 1970 or year 1 in
// some zone.
func testZeroTimesRoundTrip(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	sess := newTestSession("s1", "u1")
	sess.LastUsedAt = time.Time{} // never used
	mustCreateSession(t, s, sess)
	for _, got := range []*latchkey.Session{mustSession(t, s, "s1"), must(s.SessionByTokenHash(t.Context(), sess.CurrentHash))(t)} {
		for _, f := range []struct {
			name string
			t    time.Time
		}{
			{"LastUsedAt", got.LastUsedAt},
			{"RevokedAt", got.RevokedAt},
			{"PreviousRetiredAt", got.PreviousRetiredAt},
		} {
			if !f.t.IsZero() {
				t.Errorf("%s = %v, want the zero time", f.name, f.t)
			}
		}
		if got.Revoked() {
			t.Errorf("a session stored without RevokedAt reads back as revoked")
		}
		if len(got.PreviousHash) != 0 || len(got.PreviousSuccessor) != 0 {
			t.Errorf("PreviousHash, PreviousSuccessor = %x, %x; want empty", got.PreviousHash, got.PreviousSuccessor)
		}
	}
}

// must turns a (value, error) pair into a function that fails tb on error.
func must[T any](v T, err error) func(testing.TB) T {
	return func(tb testing.TB) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

func testInitSigningKey(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	first := &latchkey.SigningKey{ID: "kid-1", Alg: "ES256", Private: []byte("one"), CreatedAt: t0}
	got, err := s.InitSigningKey(ctx, first)
	if err != nil || got.ID != "kid-1" {
		t.Fatalf("InitSigningKey(empty) = %v, %v; want kid-1 stored", got, err)
	}
	checkBytes(t, "InitSigningKey Private", got.Private, first.Private)
	checkTime(t, "InitSigningKey CreatedAt", got.CreatedAt, first.CreatedAt)

	got, err = s.InitSigningKey(ctx, &latchkey.SigningKey{ID: "kid-2", Alg: "ES256", Private: []byte("two"), CreatedAt: t0.Add(time.Second)})
	if err != nil || got.ID != "kid-1" || string(got.Private) != "one" {
		t.Fatalf("InitSigningKey(second ES256) = %v, %v; want the stored kid-1", got, err)
	}
	got, err = s.InitSigningKey(ctx, &latchkey.SigningKey{ID: "kid-3", Alg: "EdDSA", Private: []byte("three"), CreatedAt: t0})
	if err != nil || got.ID != "kid-3" {
		t.Fatalf("InitSigningKey(first EdDSA) = %v, %v; want kid-3 stored", got, err)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("SigningKeys = %d, %v; want kid-1 and kid-3 only", len(keys), err)
	}
}

// testInitSigningKeyConcurrent is replicas starting together on an empty
// database: every caller proposes its own key, one is stored, and all get
// that one back.
func testInitSigningKeyConcurrent(t *testing.T, s latchkey.Store) {
	const n = 12
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := s.InitSigningKey(t.Context(), &latchkey.SigningKey{
				ID: fmt.Sprintf("kid-%02d", i), Alg: "RS256", Private: []byte{byte(i)}, CreatedAt: t0,
			})
			errs[i] = err
			if err == nil {
				ids[i] = k.ID
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Fatalf("callers got different keys: %v", ids)
		}
	}
	keys, err := s.SigningKeys(t.Context())
	if err != nil || len(keys) != 1 || keys[0].ID != ids[0] {
		t.Fatalf("SigningKeys = %d keys, %v; want exactly the one every caller got", len(keys), err)
	}
}
