package sqlite_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// TestDeleteExpiredSessionsBacklog purges more expired sessions than one
// batch holds: all of them go, with their tokens, and the live ones stay.
func TestDeleteExpiredSessionsBacklog(t *testing.T) {
	const expired, live = 2500, 10 // 2.5 batches of 1,000
	s := newTestStore(t, ":memory:")
	ctx := t.Context()
	if err := s.CreateUser(ctx, &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	cutoff := t0.Add(24 * time.Hour)
	for i := range expired + live {
		expires := cutoff.Add(-time.Duration(i+1) * time.Second)
		if i >= expired {
			expires = cutoff.Add(time.Hour)
		}
		sess := &latchkey.Session{ID: fmt.Sprintf("s%05d", i), UserID: "u1", CreatedAt: t0, ExpiresAt: expires,
			CurrentHash: fmt.Appendf(nil, "h%05d", i)}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}

	n, err := s.DeleteExpiredSessions(ctx, cutoff)
	if err != nil || n != expired {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want %d, nil", n, err, expired)
	}
	for _, i := range []int{0, 999, 1000, 2499} {
		if _, err := s.SessionByTokenHash(ctx, fmt.Appendf(nil, "h%05d", i)); !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("expired session %d: SessionByTokenHash error = %v, want ErrNotFound", i, err)
		}
	}
	for i := expired; i < expired+live; i++ {
		if _, err := s.SessionByTokenHash(ctx, fmt.Appendf(nil, "h%05d", i)); err != nil {
			t.Errorf("live session %d: SessionByTokenHash: %v", i, err)
		}
	}
	if n, err := s.DeleteExpiredSessions(ctx, cutoff); err != nil || n != 0 {
		t.Errorf("DeleteExpiredSessions(again) = %d, %v; want 0, nil", n, err)
	}
}
