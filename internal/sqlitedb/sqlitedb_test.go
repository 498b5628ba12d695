package sqlitedb

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// schema is a two-step schema: the second migration needs the first.
var schema = fstest.MapFS{
	"0001_items.sql": {Data: []byte(`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);`)},
	"0002_tags.sql": {Data: []byte(`CREATE TABLE tags (item INTEGER NOT NULL REFERENCES items (id), tag TEXT NOT NULL);
		CREATE INDEX tags_item ON tags (item);`)},
}

// mustOpen opens cfg and closes the database when the test ends.
func mustOpen(tb testing.TB, cfg Config) *sql.DB {
	tb.Helper()
	if cfg.Migrations == nil {
		cfg.Migrations = schema
	}
	db, err := Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open(%+v): %v", cfg, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestPragmas checks the settings Open promises, on several connections
// at once, since SQLite keeps most of them per connection.
func TestPragmas(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want map[string]string
	}{
		{name: "file, default durability", cfg: Config{Path: filepath.Join(t.TempDir(), "a.db")},
			want: map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000"}},
		{name: "file, normal durability", cfg: Config{Path: filepath.Join(t.TempDir(), "b.db"), Synchronous: Normal, BusyTimeout: 5 * time.Second},
			want: map[string]string{"journal_mode": "wal", "synchronous": "1", "foreign_keys": "1", "busy_timeout": "5000"}},
		{name: "memory", cfg: Config{Path: ":memory:"},
			want: map[string]string{"journal_mode": "memory", "foreign_keys": "1", "busy_timeout": "10000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := mustOpen(t, tc.cfg)
			conns := 3
			if tc.cfg.Path == ":memory:" {
				conns = 1 // the pool has one
			}
			for range conns {
				// Held open, so that the pool cannot hand back the same one.
				c, err := db.Conn(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				for pragma, want := range tc.want {
					var got string
					if err := c.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
						t.Fatalf("PRAGMA %s: %v", pragma, err)
					}
					if got != want {
						t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
					}
				}
			}
		})
	}
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "m.db")
	db := mustOpen(t, Config{Path: path})
	records := func(db *sql.DB) []string {
		t.Helper()
		rows, err := db.QueryContext(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var v, name string
			if err := rows.Scan(&v, &name); err != nil {
				t.Fatal(err)
			}
			got = append(got, v+" "+name)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got, want := strings.Join(records(db), "; "), "1 0001_items.sql; 2 0002_tags.sql"; got != want {
		t.Errorf("recorded %q, want %q", got, want)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO tags (item, tag) VALUES (42, 'x')`); err == nil {
		t.Error("a tag for a missing item was stored: foreign keys are off")
	}

	// Opened again with one more migration, only that one runs: a rerun of
	// 0001 would fail, its table exists.
	more := fstest.MapFS{"0003_notes.sql": {Data: []byte(`CREATE TABLE notes (body TEXT);`)}}
	for k, v := range schema {
		more[k] = v
	}
	db2 := mustOpen(t, Config{Path: path, Migrations: more})
	if got := records(db2); len(got) != 3 || got[2] != "3 0003_notes.sql" {
		t.Errorf("after a new migration: %q", got)
	}

	// A migration that fails half-way leaves nothing of itself behind.
	broken := fstest.MapFS{"0004_broken.sql": {Data: []byte(`CREATE TABLE half (x); SELECT * FROM no_such_table;`)}}
	for k, v := range more {
		broken[k] = v
	}
	if err := Migrate(ctx, db2, broken); err == nil || !strings.Contains(err.Error(), "0004_broken.sql") {
		t.Errorf("Migrate with a broken migration = %v, want an error naming it", err)
	}
	if got := records(db2); len(got) != 3 {
		t.Errorf("the broken migration was recorded: %q", got)
	}
	var n int
	if err := db2.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("the broken migration's first statement stayed (%d, %v)", n, err)
	}
}

func TestMigrationNamesCheckedFirst(t *testing.T) {
	good := []byte(`CREATE TABLE t (x);`)
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{name: "no number", fsys: fstest.MapFS{"0001_a.sql": {Data: good}, "init.sql": {Data: good}}, want: "NNNN_description.sql"},
		{name: "number zero", fsys: fstest.MapFS{"0001_a.sql": {Data: good}, "0000_b.sql": {Data: good}}, want: "NNNN_description.sql"},
		{name: "not a number", fsys: fstest.MapFS{"0001_a.sql": {Data: good}, "01a_b.sql": {Data: good}}, want: "NNNN_description.sql"},
		{name: "no description", fsys: fstest.MapFS{"0001_a.sql": {Data: good}, "0002.sql": {Data: good}}, want: "NNNN_description.sql"},
		{name: "one number twice", fsys: fstest.MapFS{"0001_a.sql": {Data: good}, "1_b.sql": {Data: good}}, want: "same number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(t.Context(), Config{Path: ":memory:", Migrations: tc.fsys})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want an error with %q", err, tc.want)
			}
		})
	}
	// Nothing is applied when a later name is wrong.
	path := filepath.Join(t.TempDir(), "n.db")
	if _, err := Open(t.Context(), Config{Path: path, Migrations: fstest.MapFS{"0001_a.sql": {Data: good}, "bad.sql": {Data: good}}}); err == nil {
		t.Fatal("Open succeeded")
	}
	db := mustOpen(t, Config{Path: path})
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_schema WHERE name = 't'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("0001_a.sql was applied beside a bad name (%d, %v)", n, err)
	}
}

// TestOpenConcurrently is several processes starting at once on a new
// database: every Open succeeds and each migration is applied once.
func TestOpenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			db, err := Open(t.Context(), Config{Path: path, Migrations: schema})
			if err == nil {
				err = db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	db := mustOpen(t, Config{Path: path})
	var count int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_migrations`).Scan(&count); err != nil || count != 2 {
		t.Errorf("schema_migrations has %d rows (%v), want 2", count, err)
	}
}

// TestMigrateRetriesWhileBusy holds the write lock from another connection
// while Migrate runs on one that does not wait for it (busy timeout 0): the
// first attempts fail with SQLITE_BUSY at once, and Migrate tries again
// until the lock is released.
func TestMigrateRetriesWhileBusy(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "busy.db")
	holder := mustOpen(t, Config{Path: path, Migrations: fstest.MapFS{}})
	tx, err := holder.BeginTx(ctx, nil) // IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE hold (x)`); err != nil {
		t.Fatal(err)
	}
	impatient, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()
	if _, err := impatient.ExecContext(ctx, `CREATE TABLE probe (x)`); !isBusy(err) {
		t.Fatalf("a write beside the held lock = %v, want SQLITE_BUSY", err)
	}
	if isBusy(errors.New("database is locked")) {
		t.Error("isBusy goes by the message")
	}

	release := time.AfterFunc(100*time.Millisecond, func() { tx.Rollback() })
	defer release.Stop()
	start := time.Now()
	if err := Migrate(ctx, impatient, schema); err != nil {
		t.Fatalf("Migrate while busy: %v", err)
	}
	if waited := time.Since(start); waited < 90*time.Millisecond {
		t.Errorf("Migrate finished after %v, before the lock was released", waited)
	}
}

func TestOpenErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a database, and long enough to have a header: ................................................................................................"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"empty path", Config{Migrations: schema}},
		{"unknown synchronous", Config{Path: ":memory:", Synchronous: "OFF", Migrations: schema}},
		{"negative busy timeout", Config{Path: ":memory:", BusyTimeout: -time.Second, Migrations: schema}},
		{"no migrations", Config{Path: ":memory:"}},
		{"not a database", Config{Path: file, Migrations: schema}},
		{"parent is a file", Config{Path: filepath.Join(file, "x.db"), Migrations: schema}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if db, err := Open(t.Context(), tc.cfg); err == nil {
				db.Close()
				t.Fatal("Open succeeded, want an error")
			}
		})
	}
}

func TestFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "data")
	// Characters that mean something in a URI stay part of the file name.
	path := filepath.Join(dir, "odd ?name#1%20.db")
	db := mustOpen(t, Config{Path: path})
	if _, err := db.ExecContext(t.Context(), `INSERT INTO items (name) VALUES ('x')`); err != nil {
		t.Fatal(err) // and the -wal file exists now
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{path, 0o600}, {path + "-wal", 0o600}, {dir, 0o700 | os.ModeDir}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("mode of %s = %v, want %v", c.path, fi.Mode(), c.want)
		}
	}
}

func TestPing(t *testing.T) {
	db := mustOpen(t, Config{Path: filepath.Join(t.TempDir(), "p.db")})
	if err := Ping(t.Context(), db); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	db.Close()
	if err := Ping(t.Context(), db); err == nil {
		t.Error("Ping on a closed database succeeded")
	}
}

// TestPoolStaysBounded runs a burst of many more concurrent readers and
// writers than the pool holds: they queue for connections rather than
// open more, and the burst leaves no more open than the bound.
func TestPoolStaysBounded(t *testing.T) {
	ctx := t.Context()
	db := mustOpen(t, Config{Path: filepath.Join(t.TempDir(), "burst.db")})
	bound := PoolSize()
	if got := db.Stats().MaxOpenConnections; got != bound {
		t.Fatalf("MaxOpenConnections = %d, want %d", got, bound)
	}
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
			for range 5 {
				var err error
				if i%4 == 0 {
					_, err = db.ExecContext(ctx, `INSERT INTO items (name) VALUES ('x')`)
				} else {
					var n int
					err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM items`).Scan(&n)
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				peak = max(peak, db.Stats().OpenConnections)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := db.Stats()
	if peak > bound || st.OpenConnections > bound {
		t.Errorf("open connections: peak %d, after %d; want at most %d", peak, st.OpenConnections, bound)
	}
	if st.WaitCount == 0 {
		t.Errorf("no request waited for a connection: %d clients did not exceed the pool of %d", clients, bound)
	}

	mem := mustOpen(t, Config{Path: ":memory:"})
	if got := mem.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("in-memory MaxOpenConnections = %d, want 1: a second connection is another database", got)
	}
}

// TestSchemaTooNew: a database migrated by a newer build (one more
// migration recorded) is refused by an older one, before anything runs.
func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	newer := fstest.MapFS{"0003_notes.sql": {Data: []byte(`CREATE TABLE notes (body TEXT);`)}}
	for k, v := range schema {
		newer[k] = v
	}
	mustOpen(t, Config{Path: path, Migrations: newer}).Close()

	db, err := Open(t.Context(), Config{Path: path, Migrations: schema})
	if err == nil {
		db.Close()
		t.Fatal("an older build opened a newer schema")
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("Open = %v, want ErrSchemaTooNew naming version 3", err)
	}
	// The same build, and a newer one, still open it.
	mustOpen(t, Config{Path: path, Migrations: newer})
}
