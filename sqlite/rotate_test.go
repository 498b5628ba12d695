package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateUser(t.Context(), &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return s
}

func createSession(t *testing.T, s *Store, id string) {
	t.Helper()
	err := s.CreateSession(t.Context(), &latchkey.Session{ID: id, UserID: "u1", CreatedAt: t0, LastUsedAt: t0,
		ExpiresAt: t0.Add(time.Hour), CurrentHash: []byte(id + "/0")})
	if err != nil {
		t.Fatal(err)
	}
}

func rot(id string, from, to string) latchkey.Rotation {
	return latchkey.Rotation{SessionID: id, OldHash: []byte(from), NewHash: []byte(to),
		SealedSuccessor: []byte("sealed " + to), At: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}
}

// TestCommitBatchIsolatesRotations runs one group commit holding good and
// refused rotations side by side: each refused one must leave no trace,
// and must not undo or block the others.
func TestCommitBatchIsolatesRotations(t *testing.T) {
	s := openTest(t)
	for _, id := range []string{"a", "b", "c", "d", "r"} {
		createSession(t, s, id)
	}
	if err := s.RevokeSession(t.Context(), "r", t0, "test"); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()

	batch := []struct {
		ctx  context.Context
		r    latchkey.Rotation
		want error // nil: success
	}{
		{t.Context(), rot("a", "a/0", "a/1"), nil},
		{t.Context(), rot("a", "a/0", "a/1-again"), latchkey.ErrConflict}, // lost the race to the first
		{t.Context(), rot("b", "b/0", "a/1"), latchkey.ErrConflict},       // NewHash already issued
		{t.Context(), rot("missing", "m/0", "m/1"), latchkey.ErrNotFound},
		{canceled, rot("c", "c/0", "c/1"), context.Canceled},
		{t.Context(), rot("d", "d/0", "d/1"), nil},
		{t.Context(), rot("a", "a/1", "a/2"), nil}, // sees the first rotation of the batch
		// An older token of another session: taken all the same.
		{t.Context(), rot("b", "b/0", "a/0"), latchkey.ErrConflict},
		// The token is recorded before the compare-and-swap finds the
		// session revoked; it must be removed again.
		{t.Context(), rot("r", "r/0", "r/1"), latchkey.ErrConflict},
	}
	reqs := make([]*rotateReq, len(batch))
	for i, b := range batch {
		reqs[i] = &rotateReq{ctx: b.ctx, r: b.r, err: make(chan error, 1)}
	}
	s.commitBatch(reqs)
	for i, b := range batch {
		err := <-reqs[i].err
		if b.want == nil && err != nil || b.want != nil && !errors.Is(err, b.want) {
			t.Errorf("rotation %d (%s %s→%s): error = %v, want %v", i, b.r.SessionID, b.r.OldHash, b.r.NewHash, err, b.want)
		}
	}

	current := map[string]string{"a": "a/2", "b": "b/0", "c": "c/0", "d": "d/1", "r": "r/0"}
	for id, want := range current {
		sess, err := s.Session(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if string(sess.CurrentHash) != want {
			t.Errorf("session %s: CurrentHash = %s, want %s", id, sess.CurrentHash, want)
		}
	}
	for _, h := range []string{"a/1-again", "c/1", "m/1", "r/1"} {
		if _, err := s.SessionByTokenHash(t.Context(), []byte(h)); !errors.Is(err, latchkey.ErrNotFound) {
			t.Errorf("refused token %s was recorded: %v", h, err)
		}
	}
	if sess, err := s.SessionByTokenHash(t.Context(), []byte("a/1")); err != nil || sess.ID != "a" {
		t.Errorf("a/1 belongs to %v, %v; want session a", sess, err)
	}
}

// TestCloseDuringRotations closes the store while rotations run: each one
// either commits or fails, none hangs, and every success is on disk.
func TestCloseDuringRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(t.Context(), &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	const n = 16
	for i := range n {
		createSession(t, s, fmt.Sprint(i))
	}
	last := make([]string, n) // newest acknowledged token per session
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprint(i)
		last[i] = id + "/0"
		wg.Go(func() {
			for k := 1; ; k++ {
				next := fmt.Sprintf("%s/%d", id, k)
				if err := s.RotateRefreshToken(context.Background(), rot(id, last[i], next)); err != nil {
					if !errors.Is(err, errClosed) {
						t.Errorf("session %s: %v", id, err)
					}
					return
				}
				last[i] = next
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	done := make(chan error)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()

	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range n {
		sess, err := s.Session(t.Context(), fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		if string(sess.CurrentHash) != last[i] {
			t.Errorf("session %d: CurrentHash = %s after reopen, want the last acknowledged %s", i, sess.CurrentHash, last[i])
		}
	}
}
