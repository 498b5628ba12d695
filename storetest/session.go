package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// rotation returns the k-th rotation of session id (k ≥ 1): from token
// k-1 to token k, one minute after the previous one.
func rotation(id string, k int) latchkey.Rotation {
	at := t0.Add(time.Duration(k) * time.Minute)
	return latchkey.Rotation{
		SessionID:       id,
		OldHash:         hash(fmt.Sprintf("%s/%d", id, k-1)),
		NewHash:         hash(fmt.Sprintf("%s/%d", id, k)),
		SealedSuccessor: []byte(fmt.Sprintf("sealed %s/%d", id, k)),
		At:              at,
		ExpiresAt:       at.Add(7 * 24 * time.Hour),
	}
}

// mustRotate applies rotations 1..n to a session created by
// newTestSession and returns the hashes of its tokens, oldest first.
func mustRotate(tb testing.TB, s latchkey.Store, id string, n int) [][]byte {
	tb.Helper()
	hashes := [][]byte{hash(id + "/0")}
	for k := 1; k <= n; k++ {
		r := rotation(id, k)
		if err := s.RotateRefreshToken(tb.Context(), r); err != nil {
			tb.Fatalf("RotateRefreshToken #%d: %v", k, err)
		}
		hashes = append(hashes, r.NewHash)
	}
	return hashes
}

func testCreateSessionRoundTrip(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	want := mustCreateSession(t, s, newTestSession("s1", "u1"))
	checkSession(t, mustSession(t, s, "s1"), want)

	got, err := s.SessionByTokenHash(t.Context(), want.CurrentHash)
	if err != nil {
		t.Fatalf("SessionByTokenHash(first token): %v", err)
	}
	checkSession(t, got, want)
}

func testCreateSessionUnknownUser(t *testing.T, s latchkey.Store) {
	sess := newTestSession("s1", "nobody")
	if err := s.CreateSession(t.Context(), sess); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("CreateSession(unknown user) error = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByTokenHash(t.Context(), sess.CurrentHash); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("refused session's token is stored: SessionByTokenHash error = %v, want ErrNotFound", err)
	}
}

func testCreateSessionDuplicates(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	first := mustCreateSession(t, s, newTestSession("s1", "u1"))
	mustRotate(t, s, "s1", 2) // so that s1 has a current, a previous and an older token

	dupID := newTestSession("s1", "u1")
	dupID.CurrentHash = hash("fresh")

	dupCurrent := newTestSession("s2", "u1")
	dupCurrent.CurrentHash = hash("s1/2")

	dupOlder := newTestSession("s3", "u1")
	dupOlder.CurrentHash = first.CurrentHash // s1's first, now retired, token

	tests := []struct {
		name string
		sess *latchkey.Session
	}{
		{"session id taken", dupID},
		{"token hash is another session's current token", dupCurrent},
		{"token hash is another session's retired token", dupOlder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateSession(t.Context(), tc.sess)
			if !errors.Is(err, latchkey.ErrConflict) {
				t.Fatalf("CreateSession error = %v, want ErrConflict", err)
			}
		})
	}

	// Nothing of the refused sessions was stored, and s1 is intact.
	if _, err := s.SessionByTokenHash(t.Context(), hash("fresh")); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SessionByTokenHash(refused session's token) error = %v, want ErrNotFound", err)
	}
	for _, id := range []string{"s2", "s3"} {
		if _, err := s.Session(t.Context(), id); !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("Session(%q) error = %v, want ErrNotFound", id, err)
		}
	}
	if got := mustSession(t, s, "s1"); !bytes.Equal(got.CurrentHash, hash("s1/2")) {
		t.Errorf("s1 CurrentHash changed by a refused CreateSession")
	}
}

func testSessionNotFound(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	mustCreateSession(t, s, newTestSession("s1", "u1"))
	if _, err := s.Session(t.Context(), "s2"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("Session(unknown) error = %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByTokenHash(t.Context(), hash("unknown")); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SessionByTokenHash(unknown) error = %v, want ErrNotFound", err)
	}
}

func testSessionByTokenHashFindsEveryToken(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	mustCreateSession(t, s, newTestSession("s1", "u1"))
	mustCreateSession(t, s, newTestSession("s2", "u1"))
	hashes := mustRotate(t, s, "s1", 4)
	mustRotate(t, s, "s2", 1)
	want := mustSession(t, s, "s1")

	for k, h := range hashes {
		var name string
		switch k {
		case len(hashes) - 1:
			name = "current"
		case len(hashes) - 2:
			name = "previous"
		default:
			name = fmt.Sprintf("older %d", k)
		}
		t.Run(name, func(t *testing.T) {
			got, err := s.SessionByTokenHash(t.Context(), h)
			if err != nil {
				t.Fatalf("SessionByTokenHash: %v", err)
			}
			checkSession(t, got, want)
		})
	}

	// A revoked session's tokens stay findable, so that they are
	// recognised rather than unknown.
	if err := s.RevokeSession(t.Context(), "s1", t0.Add(time.Hour), "test"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	for k, h := range hashes {
		got, err := s.SessionByTokenHash(t.Context(), h)
		if err != nil {
			t.Fatalf("SessionByTokenHash(token %d of revoked session): %v", k, err)
		}
		if got.ID != "s1" || !got.Revoked() {
			t.Errorf("SessionByTokenHash(token %d of revoked session) = %s, revoked %v", k, got.ID, got.Revoked())
		}
	}
}

// testSessionAndUserByTokenHash: the one-read lookup returns exactly what
// SessionByTokenHash and UserByID return, for every token of a session,
// revoked or not, and for a disabled user; and nothing for an unknown one.
func testSessionAndUserByTokenHash(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	bob := newTestUser("u2", "bob")
	bob.Role = latchkey.RoleAdmin
	if err := s.CreateUser(t.Context(), bob); err != nil {
		t.Fatal(err)
	}
	mustCreateSession(t, s, newTestSession("s1", "u1"))
	mustCreateSession(t, s, newTestSession("s2", "u2"))
	hashes := append(mustRotate(t, s, "s1", 3), mustRotate(t, s, "s2", 1)...)

	check := func(t *testing.T) {
		t.Helper()
		for _, h := range hashes {
			wantSess, err := s.SessionByTokenHash(t.Context(), h)
			if err != nil {
				t.Fatal(err)
			}
			wantUser, err := s.UserByID(t.Context(), wantSess.UserID)
			if err != nil {
				t.Fatal(err)
			}
			gotSess, gotUser, err := s.SessionAndUserByTokenHash(t.Context(), h)
			if err != nil {
				t.Fatalf("SessionAndUserByTokenHash: %v", err)
			}
			checkSession(t, gotSess, wantSess)
			checkUser(t, gotUser, wantUser)
			if gotUser.ID != gotSess.UserID {
				t.Errorf("user %s returned with a session of user %s", gotUser.ID, gotSess.UserID)
			}
		}
	}
	t.Run("live", check)
	if err := s.RevokeSession(t.Context(), "s1", t0.Add(time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	bob.Disabled = true
	if err := s.UpdateUser(t.Context(), bob); err != nil {
		t.Fatal(err)
	}
	t.Run("revoked session, disabled user", check)

	if sess, u, err := s.SessionAndUserByTokenHash(t.Context(), hash("unknown")); !errors.Is(err, latchkey.ErrNotFound) || sess != nil || u != nil {
		t.Errorf("SessionAndUserByTokenHash(unknown) = %v, %v, %v; want ErrNotFound", sess, u, err)
	}
}

func testRotateRefreshToken(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	orig := mustCreateSession(t, s, newTestSession("s1", "u1"))
	mustCreateSession(t, s, newTestSession("s2", "u1"))
	untouched := mustSession(t, s, "s2")

	for k := 1; k <= 3; k++ {
		r := rotation("s1", k)
		if err := s.RotateRefreshToken(t.Context(), r); err != nil {
			t.Fatalf("RotateRefreshToken #%d: %v", k, err)
		}
		want := *orig
		want.CurrentHash = r.NewHash
		want.PreviousHash = r.OldHash
		want.PreviousRetiredAt = r.At
		want.PreviousSuccessor = r.SealedSuccessor
		want.LastUsedAt = r.At
		want.ExpiresAt = r.ExpiresAt
		checkSession(t, mustSession(t, s, "s1"), &want)
	}
	checkSession(t, mustSession(t, s, "s2"), untouched)
}

func testRotateRefreshTokenRefused(t *testing.T, s latchkey.Store) {
	mustCreateUser(t, s, "u1", "alice")
	mustCreateSession(t, s, newTestSession("live", "u1"))
	mustRotate(t, s, "live", 2)
	mustCreateSession(t, s, newTestSession("revoked", "u1"))
	if err := s.RevokeSession(t.Context(), "revoked", t0.Add(time.Hour), "test"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	mustCreateSession(t, s, newTestSession("other", "u1"))

	stale := rotation("live", 2) // OldHash is now the previous token
	stale.NewHash = hash("never issued")
	older := rotation("live", 1) // OldHash is the first token
	older.NewHash = hash("never issued")
	revoked := rotation("revoked", 1)
	revoked.NewHash = hash("never issued")
	missing := rotation("missing", 1)
	missing.NewHash = hash("never issued")
	takenNew := rotation("live", 3)
	takenNew.NewHash = hash("other/0") // another session's token

	tests := []struct {
		name    string
		r       latchkey.Rotation
		want    error // nil: any error will do, the contract is silent
		session string
	}{
		{"previous token as OldHash", stale, latchkey.ErrConflict, "live"},
		{"older token as OldHash", older, latchkey.ErrConflict, "live"},
		{"revoked session", revoked, latchkey.ErrConflict, "revoked"},
		{"unknown session", missing, latchkey.ErrNotFound, ""},
		{"NewHash already issued", takenNew, nil, "live"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before *latchkey.Session
			if tc.session != "" {
				before = mustSession(t, s, tc.session)
			}
			err := s.RotateRefreshToken(t.Context(), tc.r)
			switch {
			case err == nil:
				t.Fatalf("RotateRefreshToken succeeded, want an error")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("RotateRefreshToken error = %v, want %v", err, tc.want)
			}
			// Nothing changed.
			if before != nil {
				checkSession(t, mustSession(t, s, tc.session), before)
			}
			got, err := s.SessionByTokenHash(t.Context(), hash("never issued"))
			if !errors.Is(err, latchkey.ErrNotFound) {
				t.Errorf("refused NewHash was recorded: SessionByTokenHash = %v, %v", got, err)
			}
		})
	}
	if got, err := s.SessionByTokenHash(t.Context(), hash("other/0")); err != nil || got.ID != "other" {
		t.Errorf("SessionByTokenHash(other/0) = %v, %v; want session other", got, err)
	}
}

// testRotateRefreshTokenConcurrent is the contract's central promise: of
// many simultaneous rotations of one token, exactly one wins.
func testRotateRefreshTokenConcurrent(t *testing.T, s latchkey.Store) {
	const n = 20
	mustCreateUser(t, s, "u1", "alice")
	sess := mustCreateSession(t, s, newTestSession("s1", "u1"))

	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := rotation("s1", 1)
			r.NewHash = hash(fmt.Sprintf("contender %d", i))
			<-start
			errs[i] = s.RotateRefreshToken(t.Context(), r)
		})
	}
	close(start)
	wg.Wait()

	winner := -1
	conflicts := 0
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("contenders %d and %d both rotated the same token", winner, i)
			}
			winner = i
		case errors.Is(err, latchkey.ErrConflict):
			conflicts++
		default:
			t.Errorf("contender %d: error = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 || conflicts != n-1 {
		t.Fatalf("%d rotations: winner %d, %d ErrConflict; want one winner and %d ErrConflict", n, winner, conflicts, n-1)
	}

	got := mustSession(t, s, "s1")
	checkBytes(t, "CurrentHash", got.CurrentHash, hash(fmt.Sprintf("contender %d", winner)))
	checkBytes(t, "PreviousHash", got.PreviousHash, sess.CurrentHash)
	for i := range n {
		_, err := s.SessionByTokenHash(t.Context(), hash(fmt.Sprintf("contender %d", i)))
		if i == winner && err != nil {
			t.Errorf("SessionByTokenHash(winner): %v", err)
		}
		if i != winner && !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("SessionByTokenHash(loser %d) error = %v, want ErrNotFound", i, err)
		}
	}
}

// testRotateRefreshTokenConcurrentSessions rotates many sessions at once:
// rotations of different sessions do not conflict, nor fail for being
// concurrent (a busy database waits rather than erring).
func testRotateRefreshTokenConcurrentSessions(t *testing.T, s latchkey.Store) {
	const sessions, rotations = 8, 10
	mustCreateUser(t, s, "u1", "alice")
	for i := range sessions {
		mustCreateSession(t, s, newTestSession(fmt.Sprintf("s%d", i), "u1"))
	}
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			id := fmt.Sprintf("s%d", i)
			for k := 1; k <= rotations; k++ {
				if err := s.RotateRefreshToken(t.Context(), rotation(id, k)); err != nil {
					t.Errorf("RotateRefreshToken(%s #%d): %v", id, k, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range sessions {
		id := fmt.Sprintf("s%d", i)
		checkBytes(t, id+" CurrentHash", mustSession(t, s, id).CurrentHash, rotation(id, rotations).NewHash)
	}
}

func testRevokeSession(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "u1", "alice")
	orig := mustCreateSession(t, s, newTestSession("s1", "u1"))
	mustCreateSession(t, s, newTestSession("s2", "u1"))

	first := t0.Add(time.Hour)
	if err := s.RevokeSession(ctx, "s1", first, "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	want := *orig
	want.RevokedAt = first
	want.RevokeReason = "logout"
	got := mustSession(t, s, "s1") // revoked sessions are still returned
	checkSession(t, got, &want)
	if !got.Revoked() {
		t.Errorf("Revoked() = false after RevokeSession")
	}

	// A second revocation succeeds and changes nothing.
	if err := s.RevokeSession(ctx, "s1", first.Add(time.Hour), "refresh token reuse"); err != nil {
		t.Fatalf("RevokeSession(again): %v", err)
	}
	checkSession(t, mustSession(t, s, "s1"), &want)

	if mustSession(t, s, "s2").Revoked() {
		t.Errorf("revoking s1 revoked s2")
	}
}

func testRevokeSessionNotFound(t *testing.T, s latchkey.Store) {
	err := s.RevokeSession(t.Context(), "missing", t0, "logout")
	if !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("RevokeSession(unknown) error = %v, want ErrNotFound", err)
	}
}

func testRevokeUserSessions(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "u1", "alice")
	mustCreateUser(t, s, "u2", "bob")
	for _, id := range []string{"a1", "a2", "a3"} {
		mustCreateSession(t, s, newTestSession(id, "u1"))
	}
	mustCreateSession(t, s, newTestSession("b1", "u2"))
	early := t0.Add(time.Minute)
	if err := s.RevokeSession(ctx, "a3", early, "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}

	at := t0.Add(time.Hour)
	n, err := s.RevokeUserSessions(ctx, "u1", "", at, "logout all")
	if err != nil || n != 2 {
		t.Fatalf("RevokeUserSessions = %d, %v; want 2, nil", n, err)
	}
	tests := []struct {
		name       string
		id         string
		revokedAt  time.Time
		revokeWhy  string
		stillAlive bool
	}{
		{"live session is revoked", "a1", at, "logout all", false},
		{"another live session is revoked", "a2", at, "logout all", false},
		{"earlier revocation is kept", "a3", early, "logout", false},
		{"other user's session stays live", "b1", time.Time{}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mustSession(t, s, tc.id)
			checkTime(t, "RevokedAt", got.RevokedAt, tc.revokedAt)
			if got.RevokeReason != tc.revokeWhy {
				t.Errorf("RevokeReason = %q, want %q", got.RevokeReason, tc.revokeWhy)
			}
			if got.Revoked() == tc.stillAlive {
				t.Errorf("Revoked() = %v", got.Revoked())
			}
		})
	}

	n, err = s.RevokeUserSessions(ctx, "u1", "", at.Add(time.Hour), "again")
	if err != nil || n != 0 {
		t.Errorf("RevokeUserSessions(again) = %d, %v; want 0, nil", n, err)
	}
	n, err = s.RevokeUserSessions(ctx, "nobody", "", at, "logout all")
	if err != nil || n != 0 {
		t.Errorf("RevokeUserSessions(unknown user) = %d, %v; want 0, nil", n, err)
	}

	// A password change ends every session but the one it came from.
	mustCreateSession(t, s, newTestSession("b2", "u2"))
	mustCreateSession(t, s, newTestSession("b3", "u2"))
	n, err = s.RevokeUserSessions(ctx, "u2", "b2", at, "password changed")
	if err != nil || n != 2 {
		t.Fatalf("RevokeUserSessions(except b2) = %d, %v; want 2, nil", n, err)
	}
	if got := mustSession(t, s, "b2"); got.Revoked() {
		t.Errorf("the spared session b2 was revoked (%q)", got.RevokeReason)
	}
	for _, id := range []string{"b1", "b3"} {
		if got := mustSession(t, s, id); got.RevokeReason != "password changed" {
			t.Errorf("session %s: RevokeReason = %q, want %q", id, got.RevokeReason, "password changed")
		}
	}
}

func testListSessions(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "u1", "alice")
	mustCreateUser(t, s, "u2", "bob")
	mustCreateUser(t, s, "u3", "carol")
	// Created out of order, so that insertion order cannot pass for age.
	for _, c := range []struct {
		id  string
		age time.Duration
	}{{"mid", 2 * time.Hour}, {"new", time.Hour}, {"old", 3 * time.Hour}, {"revoked", 30 * time.Minute}} {
		sess := newTestSession(c.id, "u1")
		sess.CreatedAt = t0.Add(-c.age)
		mustCreateSession(t, s, sess)
	}
	mustCreateSession(t, s, newTestSession("bob's", "u2"))
	if err := s.RevokeSession(ctx, "revoked", t0, "logout"); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	mustRotate(t, s, "old", 1) // use does not change the order

	tests := []struct {
		name string
		user string
		want []string
	}{
		{"newest first without revoked", "u1", []string{"new", "mid", "old"}},
		{"other user", "u2", []string{"bob's"}},
		{"user without sessions", "u3", nil},
		{"unknown user", "nobody", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.ListSessions(ctx, tc.user)
			if err != nil {
				t.Fatalf("ListSessions: %v", err)
			}
			if got := ids(list, sessionID); !slices.Equal(got, tc.want) {
				t.Errorf("ListSessions(%q) = %v, want %v", tc.user, got, tc.want)
			}
			for _, sess := range list {
				checkSession(t, sess, mustSession(t, s, sess.ID))
			}
		})
	}
}

func testDeleteExpiredSessions(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	cutoff := t0.Add(24 * time.Hour)
	mustCreateUser(t, s, "u1", "alice")
	tests := []struct {
		name    string
		id      string
		expires time.Time
		rotate  int
		revoke  bool
		deleted bool
	}{
		{"expired long ago", "gone1", cutoff.Add(-48 * time.Hour), 0, false, true},
		{"expired a microsecond before", "gone2", cutoff.Add(-time.Microsecond), 0, false, true},
		{"expired with a token chain", "gone3", cutoff.Add(-time.Hour), 3, false, true},
		{"expired and revoked", "gone4", cutoff.Add(-time.Hour), 1, true, true},
		{"expiring exactly at the cutoff", "kept1", cutoff, 0, false, false},
		{"live", "kept2", cutoff.Add(time.Hour), 2, false, false},
		{"live but revoked", "kept3", cutoff.Add(time.Hour), 0, true, false},
	}
	tokens := map[string][][]byte{}
	for _, tc := range tests {
		mustCreateSession(t, s, newTestSession(tc.id, "u1"))
		tokens[tc.id] = mustRotate(t, s, tc.id, tc.rotate)
		// Set the expiry through a last rotation, the way the Service does.
		r := rotation(tc.id, tc.rotate+1)
		r.ExpiresAt = tc.expires
		if err := s.RotateRefreshToken(ctx, r); err != nil {
			t.Fatalf("RotateRefreshToken: %v", err)
		}
		tokens[tc.id] = append(tokens[tc.id], r.NewHash)
		if tc.revoke {
			if err := s.RevokeSession(ctx, tc.id, t0, "test"); err != nil {
				t.Fatalf("RevokeSession: %v", err)
			}
		}
	}

	n, err := s.DeleteExpiredSessions(ctx, cutoff)
	if err != nil || n != 4 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 4, nil", n, err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Session(ctx, tc.id)
			if tc.deleted && !errors.Is(err, latchkey.ErrNotFound) {
				t.Errorf("Session error = %v, want ErrNotFound", err)
			}
			if !tc.deleted && err != nil {
				t.Errorf("Session: %v", err)
			}
			for k, h := range tokens[tc.id] {
				_, err := s.SessionByTokenHash(ctx, h)
				if tc.deleted && !errors.Is(err, latchkey.ErrNotFound) {
					t.Errorf("SessionByTokenHash(token %d) error = %v, want ErrNotFound", k, err)
				}
				if !tc.deleted && err != nil {
					t.Errorf("SessionByTokenHash(token %d): %v", k, err)
				}
			}
		})
	}

	n, err = s.DeleteExpiredSessions(ctx, cutoff)
	if err != nil || n != 0 {
		t.Errorf("DeleteExpiredSessions(again) = %d, %v; want 0, nil", n, err)
	}
}
