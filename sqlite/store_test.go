package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/sqlite"
	"github.com/latchkey-dev/latchkey/storetest"
)

func TestStore(t *testing.T) {
	tests := []struct {
		name string
		path func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "latchkey.db") }},
		{"memory", func(*testing.T) string { return ":memory:" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) latchkey.Store {
				return newTestStore(t, tc.path(t))
			})
		})
	}
}

// newTestStore opens the database at path and closes it when the test ends.
func newTestStore(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), path)
	if err != nil {
		tb.Fatalf("Open(%q): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 535897000, time.UTC)

func TestPersistsAcrossReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "latchkey.db")

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	u := &latchkey.User{ID: "u1", Username: "Alice", Role: latchkey.RoleAdmin, PasswordHash: "h", CreatedAt: t0}
	sess := &latchkey.Session{ID: "s1", UserID: "u1", CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour), CurrentHash: []byte("h0")}
	key := &latchkey.SigningKey{ID: "k1", Alg: "ES256", State: latchkey.KeyActive, Private: []byte{0, 1, 2}, CreatedAt: t0}
	for _, err := range []error{
		s.CreateUser(ctx, u),
		s.CreateSession(ctx, sess),
		s.RotateRefreshToken(ctx, latchkey.Rotation{SessionID: "s1", OldHash: []byte("h0"), NewHash: []byte("h1"),
			SealedSuccessor: []byte("sealed"), At: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}),
		s.UpdateSigningKeys(ctx, func([]*latchkey.SigningKey) (latchkey.KeyChanges, error) {
			return latchkey.KeyChanges{Create: []*latchkey.SigningKey{key}}, nil
		}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = newTestStore(t, path)
	if got, err := s.UserByUsername(ctx, "alice"); err != nil || got.ID != "u1" {
		t.Errorf("after reopen, UserByUsername = %v, %v", got, err)
	}
	for _, h := range []string{"h0", "h1"} {
		got, err := s.SessionByTokenHash(ctx, []byte(h))
		if err != nil || got.ID != "s1" || string(got.CurrentHash) != "h1" || !got.LastUsedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after reopen, SessionByTokenHash(%s) = %+v, %v", h, got, err)
		}
	}
	if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 1 || string(keys[0].Private) != "\x00\x01\x02" {
		t.Errorf("after reopen, SigningKeys = %v, %v", keys, err)
	}
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latchkey.db")
	a := newTestStore(t, path)
	b := newTestStore(t, path) // both open: the second finds the schema applied
	if err := a.CreateUser(t.Context(), &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if all, err := b.ListUsers(t.Context(), "", 10); err != nil || len(all) != 1 {
		t.Errorf("ListUsers through the second Store = %d users, %v; want 1", len(all), err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	newTestStore(t, path) // and a third, after a Close
}

func TestOpenConcurrently(t *testing.T) {
	// Several processes starting at once on a new database: each
	// migration is applied exactly once and every Open succeeds.
	path := filepath.Join(t.TempDir(), "latchkey.db")
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			s, err := sqlite.Open(t.Context(), path)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Errorf("Open: %v", err)
		}
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "latchkey")
	path := filepath.Join(dir, "latchkey.db")
	s := newTestStore(t, path)
	// Write something so that the -wal file exists too.
	if err := s.UpdateSigningKeys(t.Context(), func([]*latchkey.SigningKey) (latchkey.KeyChanges, error) {
		return latchkey.KeyChanges{Create: []*latchkey.SigningKey{{ID: "k", Alg: "ES256", State: latchkey.KeyActive, Private: []byte("secret"), CreatedAt: t0}}}, nil
	}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		path string
		want os.FileMode
	}{
		{"database", path, 0o600},
		{"write-ahead log", path + "-wal", 0o600},
		{"created parent directory", dir, 0o700 | os.ModeDir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := os.Stat(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode(); got != tc.want {
				t.Errorf("mode of %s = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a database, and long enough to have a header: ................................................................................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{"empty path", ""},
		{"not a database", file},
		{"parent is a file", filepath.Join(file, "latchkey.db")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.path)
			}
		})
	}
}

func TestOpenOddPath(t *testing.T) {
	// Characters that mean something in a URI stay part of the file name.
	path := filepath.Join(t.TempDir(), "odd ?name#1%20.db")
	newTestStore(t, path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %q: %v", path, err)
	}
}

func TestCanceledContext(t *testing.T) {
	s := newTestStore(t, filepath.Join(t.TempDir(), "latchkey.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.UserByID(ctx, "u1"); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByID(canceled) error = %v, want context.Canceled", err)
	}
}

// BenchmarkRotate measures refresh token rotations on a file database,
// each one durable (synchronous=FULL) before it returns.
func BenchmarkRotate(b *testing.B) {
	for _, parallel := range []bool{false, true} {
		b.Run(fmt.Sprintf("parallel=%v", parallel), func(b *testing.B) {
			benchmarkRotate(b, parallel)
		})
	}
}

func benchmarkRotate(b *testing.B, parallel bool) {
	ctx := b.Context()
	s := newTestStore(b, filepath.Join(b.TempDir(), "latchkey.db"))
	if err := s.CreateUser(ctx, &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, CreatedAt: t0}); err != nil {
		b.Fatal(err)
	}
	var next int64
	newSession := func() (string, []byte) {
		id := fmt.Sprintf("s%d", next)
		next++
		h := []byte(id + "/0")
		err := s.CreateSession(ctx, &latchkey.Session{ID: id, UserID: "u1", CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour), CurrentHash: h})
		if err != nil {
			b.Fatal(err)
		}
		return id, h
	}
	rotate := func(id string, old []byte, k int) []byte {
		h := fmt.Appendf(nil, "%s/%d", id, k)
		err := s.RotateRefreshToken(ctx, latchkey.Rotation{
			SessionID: id, OldHash: old, NewHash: h, SealedSuccessor: make([]byte, 71),
			At: t0.Add(time.Duration(k) * time.Microsecond), ExpiresAt: t0.Add(time.Hour),
		})
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	if !parallel {
		id, h := newSession()
		b.ResetTimer()
		for k := 1; b.Loop(); k++ {
			h = rotate(id, h, k)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
		return
	}
	// One session per goroutine: rotations of different sessions contend
	// only for SQLite's write lock.
	ids := make(chan string, 1024)
	for range cap(ids) {
		id, _ := newSession()
		ids <- id
	}
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := <-ids
		h := []byte(id + "/0")
		for k := 1; pb.Next(); k++ {
			h = rotate(id, h, k)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rotations/s")
}
