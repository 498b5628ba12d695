package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/sqlitedb/sqlitedbtest"
)

// TestSuspect checks which of SQLite's real errors make a connection
// suspect, each provoked for real rather than built by hand.
func TestSuspect(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := mustOpen(t, Config{Path: filepath.Join(dir, "s.db")})
	if _, err := db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES (1, 'x')`); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(dsn string) *sql.DB {
		d, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	readOnly := open("file:" + filepath.Join(dir, "s.db") + "?mode=ro")
	tests := []struct {
		name    string
		fail    func() error
		suspect bool
	}{
		{"read-only", func() error {
			_, err := readOnly.ExecContext(ctx, `INSERT INTO items (name) VALUES ('y')`)
			return err
		}, true},
		{"not a database", func() error {
			_, err := open(garbage).ExecContext(ctx, `SELECT * FROM sqlite_schema`)
			return err
		}, true},
		{"cannot open", func() error {
			return open("file:" + filepath.Join(dir, "missing", "x.db") + "?mode=ro").PingContext(ctx)
		}, true},
		{"unique violation", func() error {
			_, err := db.ExecContext(ctx, `INSERT INTO items (id, name) VALUES (1, 'again')`)
			return err
		}, false},
		{"syntax error", func() error {
			_, err := db.ExecContext(ctx, `SELEC 1`)
			return err
		}, false},
		{"not from SQLite", func() error { return errors.New("attempt to write a readonly database") }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.fail()
			if err == nil {
				t.Fatal("no error")
			}
			if got := Suspect(err); got != tc.suspect {
				t.Errorf("Suspect(%v) = %v, want %v", err, got, tc.suspect)
			}
			if got := Suspect(fmt.Errorf("wrapped: %w", err)); got != tc.suspect {
				t.Errorf("Suspect of the wrapped error = %v, want %v", got, tc.suspect)
			}
		})
	}
}

// TestSuspectConnectionsLeaveThePool runs statements that fail in
// different ways on a pool of one connection, and checks which failures
// replace the connection: those that make it suspect do, an ordinary
// refusal does not. A TEMP table, which lives as long as its connection,
// tells one connection from the next.
func TestSuspectConnectionsLeaveThePool(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, Config{Path: filepath.Join(t.TempDir(), "pool.db")})
	db.SetMaxOpenConns(1)
	// queryOnly makes the connection refuse writes with SQLITE_READONLY,
	// as one opened on a read-only file does.
	queryOnly := func() error {
		_, err := db.ExecContext(ctx, `PRAGMA query_only = 1`)
		return err
	}
	tests := []struct {
		name     string
		fail     func() error
		replaced bool
	}{
		{"constraint", func() error {
			_, err := db.ExecContext(ctx, `INSERT INTO tags (item, tag) VALUES (42, 'no such item')`)
			return err
		}, false},
		{"read-only, by exec", func() error {
			if err := queryOnly(); err != nil {
				return err
			}
			_, err := db.ExecContext(ctx, `INSERT INTO items (name) VALUES ('x')`)
			return err
		}, true},
		{"read-only, in the rows of a prepared INSERT ... RETURNING", func() error {
			if err := queryOnly(); err != nil {
				return err
			}
			st, err := db.PrepareContext(ctx, `INSERT INTO items (name) VALUES ('x') RETURNING id`)
			if err != nil {
				return err
			}
			defer st.Close()
			var id int64
			return st.QueryRowContext(ctx).Scan(&id)
		}, true},
		{"read-only, in a transaction", func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO items (name) VALUES ('x')`)
			return err
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS marker (x)`); err != nil {
				t.Fatal(err)
			}
			err := tc.fail()
			if err == nil {
				t.Fatal("the statement succeeded")
			}
			var marked int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM temp.sqlite_schema WHERE name = 'marker'`).Scan(&marked); err != nil {
				t.Fatalf("the next statement: %v", err)
			}
			if replaced := marked == 0; replaced != tc.replaced {
				t.Errorf("after %v: connection replaced = %v, want %v", err, replaced, tc.replaced)
			}
			// Whatever happened, the next case starts on a writable one.
			if _, err := db.ExecContext(ctx, `PRAGMA query_only = 0`); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// faultCase is a way for a database's files to turn read-only under an
// open pool.
type faultCase struct {
	name string
	// files returns what to make read-only, given the database file.
	files func(tb testing.TB, path string) []string
	// reads: reads keep working while the files are read-only.
	reads bool
}

var faultCases = []faultCase{
	{
		name:  "database file read-only",
		files: func(_ testing.TB, path string) []string { return []string{path} },
		reads: true,
	},
	{
		// Not the -shm file: see sqlitedbtest.ReadOnly.
		name:  "database and -wal read-only",
		files: func(_ testing.TB, path string) []string { return []string{path, path + "-wal"} },
	},
}

// TestFilesTurnReadOnly makes the files read-only under an open pool, as a
// change of permissions or a remount would (see sqlitedbtest.ReadOnly for
// how, as root too), with the pool's idle connections gone, as after a
// quiet minute. While they are read-only, writes fail with a suspect
// error, Ping fails, and a burst of reads leaves the pool full of
// read-only connections. Once they are writable again, writes succeed at
// once, with no failure, on the same *sql.DB: the read-only connections
// leave the pool instead of serving.
func TestFilesTurnReadOnly(t *testing.T) {
	for _, fc := range faultCases {
		t.Run(fc.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "ro.db")
			db := mustOpen(t, Config{Path: path})
			write := func() error {
				_, err := db.ExecContext(ctx, `INSERT INTO items (name) VALUES ('x')`)
				return err
			}
			if err := write(); err != nil {
				t.Fatal(err)
			}
			restore := sqlitedbtest.ReadOnly(t, fc.files(t, path)...)
			sqlitedbtest.Reconnect(db, PoolSize())
			if fc.reads {
				sqlitedbtest.FillPool(t, db, PoolSize())
			}

			for i := range 3 {
				err := write()
				if err == nil || !Suspect(err) {
					t.Fatalf("write #%d on read-only files = %v, want a read-only or I/O error", i, err)
				}
			}
			if err := Ping(ctx, db); err == nil {
				t.Error("Ping succeeded on read-only files")
			} else if fc.reads && !errors.Is(err, ErrReadOnly) {
				t.Errorf("Ping = %v, want ErrReadOnly", err)
			}
			if fc.reads {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil || n != 1 {
					t.Errorf("read on read-only files = %d, %v; want 1 row", n, err)
				}
			}

			restore()
			start := time.Now()
			if err := write(); err != nil {
				t.Fatalf("the first write after the files are writable again: %v", err)
			}
			if err := Ping(ctx, db); err != nil {
				t.Errorf("Ping after the files are writable again: %v", err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 3*PoolSize())
			for range cap(errs) {
				wg.Go(func() {
					if err := write(); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("a write after recovery failed: a read-only connection stayed in the pool: %v", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("recovery took %v, want under a second", d)
			}
		})
	}
}

// TestPingReadOnlyConnection: a database opened elsewhere, read-only, is
// not ready, and Ping says why.
func TestPingReadOnlyConnection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	mustOpen(t, Config{Path: path})
	ro, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := Ping(t.Context(), ro); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Ping on a mode=ro database = %v, want ErrReadOnly", err)
	}
}

// BenchmarkPing measures the readiness check against the bare round trip
// (SELECT 1 on a pooled connection) and against the check it replaced the
// idea of (BEGIN IMMEDIATE; ROLLBACK, which takes the write lock), idle and
// while writers keep the write lock busy. Run with
//
//	go test -run '^$' -bench BenchmarkPing ./internal/sqlitedb/
func BenchmarkPing(b *testing.B) {
	checks := []struct {
		name  string
		check func(ctx context.Context, db *sql.DB) error
	}{
		{"select-1", func(ctx context.Context, db *sql.DB) error {
			_, err := db.ExecContext(ctx, `SELECT 1`)
			return err
		}},
		{"Ping", Ping},
		{"begin-immediate", func(ctx context.Context, db *sql.DB) error {
			tx, err := db.BeginTx(ctx, nil) // IMMEDIATE, see dataSource
			if err != nil {
				return err
			}
			return tx.Rollback()
		}},
	}
	for _, load := range []string{"idle", "writers"} {
		for _, c := range checks {
			b.Run(load+"/"+c.name, func(b *testing.B) {
				ctx := b.Context()
				db := mustOpen(b, Config{Path: filepath.Join(b.TempDir(), "bench.db")})
				if load == "writers" {
					stop := make(chan struct{})
					var wg sync.WaitGroup
					for range 2 {
						wg.Go(func() {
							for {
								select {
								case <-stop:
									return
								default:
								}
								if _, err := db.ExecContext(ctx, `INSERT INTO items (name) VALUES ('x')`); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					defer func() { close(stop); wg.Wait() }()
				}
				b.ResetTimer()
				for b.Loop() {
					if err := c.check(ctx, db); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
