package sqlite

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/sqlitedb"
	"github.com/latchkey-dev/latchkey/internal/sqlitedb/sqlitedbtest"
)

// TestPoolStaysBounded runs a burst of many more concurrent callers than
// the pool holds, writes and reads: they queue for connections rather than
// open more (each one is open files), and the burst leaves no more open
// than the bound.
func TestPoolStaysBounded(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bound := sqlitedb.PoolSize()
	if got := s.db.Stats().MaxOpenConnections; got != bound {
		t.Fatalf("MaxOpenConnections = %d, want %d", got, bound)
	}
	t0 := time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)
	const clients = 64
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		peak  int
		start = make(chan struct{})
	)
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("u%d", i)
			if err := s.CreateUser(ctx, &latchkey.User{ID: id, Username: "user" + id, Role: latchkey.RoleMember, CreatedAt: t0}); err != nil {
				errs <- err
				return
			}
			for range 4 {
				if _, err := s.UserByID(ctx, id); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				peak = max(peak, s.db.Stats().OpenConnections)
				mu.Unlock()
			}
		})
	}
	// Every connection is taken while the callers start, so they queue
	// for the pool: what follows tests the bound under real contention.
	release := sqlitedbtest.HoldPool(t, s.db, bound)
	close(start)
	time.Sleep(50 * time.Millisecond)
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := s.db.Stats()
	if peak > bound || st.OpenConnections > bound {
		t.Errorf("open connections: peak %d, after %d; want at most %d", peak, st.OpenConnections, bound)
	}
	if st.WaitCount == 0 {
		t.Errorf("no call waited for a connection: %d callers did not exceed the pool of %d", clients, bound)
	}
}
