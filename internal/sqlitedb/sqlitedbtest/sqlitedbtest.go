// Package sqlitedbtest helps test what a SQLite store does when its files
// fail it: it makes database files read-only for real, as SQLite sees
// them, and fills a pool with connections opened in that state.
//
// It is for tests only, and links nothing but the standard library.
package sqlitedbtest

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ReadOnly makes the files at paths read-only to this process until the
// returned restore is called, or the test ends, whichever comes first.
// restore may be called more than once.
//
// What works depends on who runs the test. As another user, clearing the
// write bits is enough. As root it is not: root opens any file for writing
// whatever its mode, so SQLite would never notice. There the files are
// made immutable (chattr +i, FS_IMMUTABLE_FL), which stops root's open(2)
// for writing with EPERM, as a read-only mount would with EROFS; SQLite
// then opens new connections read-only, exactly as after a chmod for
// anyone else. This is what was found to work on the CI machine (root, ext4,
// CAP_LINUX_IMMUTABLE). Without chattr, or on a file system that lacks
// the flag, the test is skipped with the reason.
//
// Leave a -shm file out: made immutable while SQLite has it mapped, the
// kernel answers the mapping's next write with SIGBUS, which kills the
// process, an outage no deployment sees (a remount read-only is refused
// while files are open for writing, and a chmod leaves a mapping alone).
//
// chattr runs as a child process on purpose: opening and closing a
// database file from this process would drop the POSIX locks that the
// SQLite connections of this process hold on it.
func ReadOnly(tb testing.TB, paths ...string) (restore func()) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return immutable(tb, paths)
	}
	return chmodReadOnly(tb, paths)
}

func immutable(tb testing.TB, paths []string) func() {
	tb.Helper()
	chattr, err := exec.LookPath("chattr")
	if err != nil {
		tb.Skipf("running as root, where file modes do not stop writes, and chattr is not installed: %v", err)
	}
	var done []string
	restore := func() {
		for _, p := range done {
			if out, err := exec.Command(chattr, "-i", p).CombinedOutput(); err != nil {
				tb.Errorf("chattr -i %s: %v: %s", p, err, strings.TrimSpace(string(out)))
			}
		}
		done = nil
	}
	tb.Cleanup(restore) // before TempDir's: an immutable file cannot be removed
	for _, p := range paths {
		if out, err := exec.Command(chattr, "+i", p).CombinedOutput(); err != nil {
			restore()
			tb.Skipf("running as root, where file modes do not stop writes, and chattr +i %s failed: %v: %s",
				p, err, strings.TrimSpace(string(out)))
		}
		done = append(done, p)
	}
	return restore
}

func chmodReadOnly(tb testing.TB, paths []string) func() {
	tb.Helper()
	modes := map[string]os.FileMode{}
	restore := func() {
		for p, mode := range modes {
			if err := os.Chmod(p, mode); err != nil {
				tb.Errorf("restore mode of %s: %v", p, err)
			}
		}
		clear(modes)
	}
	tb.Cleanup(restore)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			restore()
			tb.Fatalf("read-only: %v", err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()&^0o222); err != nil {
			restore()
			tb.Fatalf("read-only: %v", err)
		}
		modes[p] = fi.Mode().Perm()
	}
	return restore
}

// Reconnect closes every idle connection of db, so that what runs next
// runs on connections opened from now on, as after a quiet spell in which
// the pool's idle connections timed out; idle is the pool's bound on idle
// connections, set again afterwards.
func Reconnect(db *sql.DB, idle int) {
	db.SetMaxIdleConns(0)
	db.SetMaxIdleConns(idle)
}

// FillPool takes n connections of db at once, runs a read on each, and
// gives them back: with the files read-only, that leaves the pool holding
// n connections opened read-only, as a burst of reads during an outage
// would. It fails the test if a read fails.
func FillPool(tb testing.TB, db *sql.DB, n int) {
	tb.Helper()
	ctx := context.Background()
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.Conn(ctx) // the ones held make the pool open another
		if err != nil {
			tb.Fatalf("fill pool: %v", err)
		}
		conns = append(conns, c)
		var v int
		if err := c.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&v); err != nil {
			tb.Fatalf("fill pool: read: %v", err)
		}
	}
}

// HoldPool takes n connections of db and keeps them until release is
// called (or the test ends), so that callers started meanwhile must wait
// for the pool: a test of the pool's bound then sees contention whatever
// the scheduler does, instead of hoping for it.
func HoldPool(tb testing.TB, db *sql.DB, n int) (release func()) {
	tb.Helper()
	conns := make([]*sql.Conn, 0, n)
	for range n {
		c, err := db.Conn(tb.Context())
		if err != nil {
			tb.Fatalf("hold a connection: %v", err)
		}
		conns = append(conns, c)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		for _, c := range conns {
			c.Close()
		}
	}
	tb.Cleanup(release)
	return release
}
