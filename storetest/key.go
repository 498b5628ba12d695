package storetest

import (
	"context"
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
		{ID: "kid-mid", Alg: "EdDSA", State: latchkey.KeyActive, Private: []byte{0x30, 0x2e, 0x02, 0x01, 0x00}, CreatedAt: t0.Add(-time.Hour)},
		{ID: "kid-new", Alg: "ES256", State: latchkey.KeyNext, Private: private, Sealed: true, CreatedAt: t0},
		{ID: "kid-old", Alg: "RS256", State: latchkey.KeyWithdrawn, Private: []byte{0xff, 0x00, 0xff}, CreatedAt: t0.Add(-48 * time.Hour)},
	}
	for _, k := range created {
		mustCreateKeys(t, s, k)
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
		if k.Alg != want.Alg || k.State != want.State || k.Sealed != want.Sealed {
			t.Errorf("key %s: Alg, State, Sealed = %q, %q, %v; want %q, %q, %v", k.ID, k.Alg, k.State, k.Sealed, want.Alg, want.State, want.Sealed)
		}
		checkBytes(t, "key "+k.ID+" Private", k.Private, want.Private)
		checkTime(t, "key "+k.ID+" CreatedAt", k.CreatedAt, want.CreatedAt)
	}
}

func testSigningKeyDuplicateID(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	k := &latchkey.SigningKey{ID: "kid", Alg: "ES256", State: latchkey.KeyActive, Private: []byte("one"), CreatedAt: t0}
	mustCreateKeys(t, s, k)
	dup := &latchkey.SigningKey{ID: "kid", Alg: "EdDSA", State: latchkey.KeyActive, Private: []byte("two"), CreatedAt: t0.Add(time.Hour)}
	if err := createKeys(ctx, s, dup); !errors.Is(err, latchkey.ErrConflict) {
		t.Fatalf("create with a duplicate id: %v, want ErrConflict", err)
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

			k := &latchkey.SigningKey{ID: "k" + id, Alg: "ES256", State: latchkey.KeyRetired, Private: []byte{1},
				CreatedAt: tc.at, ActivatedAt: tc.at.Add(time.Microsecond), RetiredAt: tc.at.Add(2 * time.Microsecond)}
			mustCreateKeys(t, s, k)
			keys, err := s.SigningKeys(ctx)
			if err != nil {
				t.Fatalf("SigningKeys: %v", err)
			}
			for _, got := range keys {
				if got.ID == k.ID {
					checkTime(t, "SigningKey.CreatedAt", got.CreatedAt, tc.at)
					checkTime(t, "SigningKey.ActivatedAt", got.ActivatedAt, k.ActivatedAt)
					checkTime(t, "SigningKey.RetiredAt", got.RetiredAt, k.RetiredAt)
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

// createKeys stores keys in one UpdateSigningKeys.
func createKeys(ctx context.Context, s latchkey.Store, keys ...*latchkey.SigningKey) error {
	return s.UpdateSigningKeys(ctx, func([]*latchkey.SigningKey) (latchkey.KeyChanges, error) {
		return latchkey.KeyChanges{Create: keys}, nil
	})
}

func mustCreateKeys(tb testing.TB, s latchkey.Store, keys ...*latchkey.SigningKey) {
	tb.Helper()
	if err := createKeys(tb.Context(), s, keys...); err != nil {
		tb.Fatalf("create signing keys: %v", err)
	}
}

// testUpdateSigningKeys checks what one update applies, field by field,
// and that a refused update changes nothing at all.
func testUpdateSigningKeys(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	next := &latchkey.SigningKey{ID: "kid-next", Alg: "ES256", State: latchkey.KeyNext, Private: []byte("n"), CreatedAt: t0.Add(time.Second)}
	active := &latchkey.SigningKey{ID: "kid-active", Alg: "ES256", State: latchkey.KeyActive, Private: []byte("a"), Sealed: true,
		CreatedAt: t0, ActivatedAt: t0}
	old := &latchkey.SigningKey{ID: "kid-old", Alg: "ES256", State: latchkey.KeyRetired, Private: []byte("o"),
		CreatedAt: t0.Add(-time.Hour), ActivatedAt: t0.Add(-time.Hour), RetiredAt: t0}
	mustCreateKeys(t, s, next, active, old)

	var seen []string
	err := s.UpdateSigningKeys(ctx, func(keys []*latchkey.SigningKey) (latchkey.KeyChanges, error) {
		for _, k := range keys {
			seen = append(seen, k.ID+":"+string(k.State))
		}
		a, n := *keys[1], *keys[0]
		a.State, a.RetiredAt = latchkey.KeyRetired, t0.Add(time.Minute)
		n.State, n.ActivatedAt, n.Private, n.Sealed = latchkey.KeyActive, t0.Add(time.Minute), []byte("sealed n"), true
		return latchkey.KeyChanges{Update: []*latchkey.SigningKey{&a, &n}, Delete: []string{"kid-old"}}, nil
	})
	if err != nil {
		t.Fatalf("UpdateSigningKeys: %v", err)
	}
	if want := []string{"kid-next:next", "kid-active:active", "kid-old:retired"}; !slices.Equal(seen, want) {
		t.Errorf("decide saw %v, want %v (newest first, with states)", seen, want)
	}
	keys, err := s.SigningKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("SigningKeys after the update = %d keys, %v; want 2", len(keys), err)
	}
	n, a := keys[0], keys[1]
	if n.State != latchkey.KeyActive || !n.Sealed || string(n.Private) != "sealed n" {
		t.Errorf("promoted key = %+v", n)
	}
	checkTime(t, "promoted ActivatedAt", n.ActivatedAt, t0.Add(time.Minute))
	if a.State != latchkey.KeyRetired || !a.Sealed || string(a.Private) != "a" {
		t.Errorf("retired key = %+v", a)
	}
	checkTime(t, "retired RetiredAt", a.RetiredAt, t0.Add(time.Minute))
	checkTime(t, "retired ActivatedAt", a.ActivatedAt, t0)

	// Refusals change nothing, even the parts of the change that were fine.
	errDecide := errors.New("decided against it")
	extra := &latchkey.SigningKey{ID: "kid-extra", Alg: "ES256", State: latchkey.KeyNext, Private: []byte("x"), CreatedAt: t0}
	ghost := &latchkey.SigningKey{ID: "kid-ghost", Alg: "ES256", State: latchkey.KeyRetired, Private: []byte("g"), CreatedAt: t0}
	for _, tc := range []struct {
		name string
		ch   latchkey.KeyChanges
		err  error
		want error
	}{
		{"decide fails", latchkey.KeyChanges{Create: []*latchkey.SigningKey{extra}}, errDecide, errDecide},
		{"update of a missing key", latchkey.KeyChanges{Create: []*latchkey.SigningKey{extra}, Update: []*latchkey.SigningKey{ghost}}, nil, latchkey.ErrNotFound},
		{"delete of a missing key", latchkey.KeyChanges{Create: []*latchkey.SigningKey{extra}, Delete: []string{"kid-ghost"}}, nil, latchkey.ErrNotFound},
		{"duplicate create", latchkey.KeyChanges{Create: []*latchkey.SigningKey{extra, extra}}, nil, latchkey.ErrConflict},
	} {
		err := s.UpdateSigningKeys(ctx, func([]*latchkey.SigningKey) (latchkey.KeyChanges, error) { return tc.ch, tc.err })
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 2 {
			t.Errorf("%s: %d keys afterwards, %v; want the 2 from before", tc.name, len(keys), err)
		}
	}
}

// testUpdateSigningKeysConcurrent is replicas starting together on an
// empty database, and then replicas racing to change keys: each decide
// sees what the ones before it wrote, so exactly one creates a first key
// and no change is lost.
func testUpdateSigningKeysConcurrent(t *testing.T, s latchkey.Store) {
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.UpdateSigningKeys(t.Context(), func(keys []*latchkey.SigningKey) (latchkey.KeyChanges, error) {
				var ch latchkey.KeyChanges
				if !slices.ContainsFunc(keys, func(k *latchkey.SigningKey) bool { return k.State == latchkey.KeyActive }) {
					ch.Create = append(ch.Create, &latchkey.SigningKey{ID: fmt.Sprintf("first-%02d", i), Alg: "ES256",
						State: latchkey.KeyActive, Private: []byte{byte(i)}, CreatedAt: t0})
				}
				ch.Create = append(ch.Create, &latchkey.SigningKey{ID: fmt.Sprintf("each-%02d", i), Alg: "ES256",
					State: latchkey.KeyNext, Private: []byte{byte(i)}, CreatedAt: t0.Add(time.Duration(len(keys)) * time.Second)})
				return ch, nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	keys, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, k := range keys {
		if k.State == latchkey.KeyActive {
			active++
		}
	}
	if active != 1 || len(keys) != n+1 {
		t.Errorf("%d active keys and %d in all; want 1 active and %d in all (one first key, every caller's own)", active, len(keys), n+1)
	}
}
