package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/sqlitedb"
	"github.com/latchkey-dev/latchkey/internal/sqlitedb/sqlitedbtest"
)

// TestFilesTurnReadOnly: the database files turn read-only under an open
// Store (a change of permissions, a remount; see sqlitedbtest.ReadOnly for
// how, as root too) after its idle connections have gone, and a burst of
// reads fills the pool with connections opened read-only. Meanwhile
// logins (reads) work, writes fail with an error that is no answer
// (neither ErrNotFound nor ErrConflict), and Ping fails. Once the files
// are writable again, every write succeeds within a second, on the same
// Store: the read-only connections leave the pool instead of serving.
func TestFilesTurnReadOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
	var n atomic.Int64
	createUser := func() error {
		id := fmt.Sprint("u", n.Add(1))
		return s.CreateUser(ctx, &latchkey.User{ID: id, Username: "user" + id, Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0})
	}
	if err := createUser(); err != nil {
		t.Fatal(err)
	}

	restore := sqlitedbtest.ReadOnly(t, path)
	sqlitedbtest.Reconnect(s.db, sqlitedb.PoolSize())
	sqlitedbtest.FillPool(t, s.db, sqlitedb.PoolSize())
	for i := range 3 {
		err := createUser()
		switch {
		case err == nil:
			t.Fatalf("CreateUser #%d succeeded on a read-only database", i)
		case errors.Is(err, latchkey.ErrConflict), errors.Is(err, latchkey.ErrNotFound):
			t.Fatalf("CreateUser #%d = %v: a read-only database must not pass for an answer", i, err)
		}
	}
	if err := s.Ping(ctx); !errors.Is(err, sqlitedb.ErrReadOnly) {
		t.Errorf("Ping on a read-only database = %v, want ErrReadOnly", err)
	}
	if u, err := s.UserByID(ctx, "u1"); err != nil || u.Username != "useru1" {
		t.Errorf("UserByID on a read-only database = %+v, %v; want the user", u, err)
	}

	restore()
	start := time.Now()
	if err := createUser(); err != nil {
		t.Fatalf("the first CreateUser after the files are writable again: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*sqlitedb.PoolSize())
	for range cap(errs) {
		wg.Go(func() {
			if err := createUser(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("CreateUser after recovery: a read-only connection stayed in the pool: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping after recovery: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("recovery took %v, want under a second", d)
	}
}
