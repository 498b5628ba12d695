// Package sqlitedb opens a SQLite database the one way both of Latchkey's
// SQLite stores need it, the auth server's (sqlite/) and the books server's
// (books/): the file created with private modes, one DSN dialect for the
// pragmas, a pool sized for SQLite whose connections leave it when their
// file fails them (see conn.go), the schema brought up to date from
// numbered migrations, and a ping that fails when the database cannot be
// written.
//
// It knows nothing of either store's tables, and imports nothing of
// Latchkey: books, written as a third party would write it, may not link
// the domain, which sqlite/ does. It is internal because it is no API for
// other people's code; it changes with its two callers.
//
// It uses modernc.org/sqlite, SQLite in pure Go, registered as "sqlite".
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Synchronous is SQLite's synchronous setting for a file database: what a
// committed transaction survives.
type Synchronous string

const (
	// Full waits for the disk at every commit, so a committed transaction
	// survives a power cut.
	Full Synchronous = "FULL"
	// Normal survives a crash of the process, not of the machine: in WAL
	// mode the last commits may be lost at a power cut, but the database
	// stays consistent. It costs no fsync per commit.
	Normal Synchronous = "NORMAL"
)

// DefaultBusyTimeout is how long a statement waits for another
// connection's, or another process's, write lock when Config.BusyTimeout
// is zero, and how long Migrate retries on SQLITE_BUSY.
const DefaultBusyTimeout = 10 * time.Second

// idleTimeout closes a pooled connection that has not been used for this
// long, so that the connections (each with its file descriptors) opened
// for a burst of requests do not stay open after it.
const idleTimeout = time.Minute

// Config says which database Open opens and how.
type Config struct {
	// Path is the database file, or ":memory:" for a private in-memory
	// database that is gone on Close. Required. A new file is created with
	// mode 0600 and a missing parent directory with 0700; existing ones
	// keep their modes.
	Path string
	// Synchronous is the durability of a file database's commits. Empty
	// means Full, the safe choice.
	Synchronous Synchronous
	// BusyTimeout is how long a statement waits for another writer before
	// failing with SQLITE_BUSY. Zero means DefaultBusyTimeout.
	BusyTimeout time.Duration
	// Migrations holds the schema as NNNN_name.sql files at its root, which
	// Open applies (see Migrate). Required.
	Migrations fs.FS
}

// PoolSize is the most connections Open keeps to a file database, in use
// or idle. In WAL mode readers run beside the one writer, and writers
// queue on the database's write lock, so connections beyond the CPUs add
// open files, not throughput; at least four, so that a writer waiting for
// the disk does not leave readers without a connection on a small machine.
func PoolSize() int { return max(4, runtime.GOMAXPROCS(0)) }

// Open opens the database cfg describes, creating it if needed, and
// applies the migrations it has not recorded yet.
//
// Every connection has foreign keys on and the busy timeout; a file
// database also runs in WAL mode, so that reads do not wait for the
// writer, with cfg's synchronous setting. Transactions begin IMMEDIATE:
// they take the write lock up front, waiting under the busy timeout,
// instead of failing with SQLITE_BUSY when a read lock cannot be upgraded.
//
// A connection whose file fails it (read-only, I/O error, corruption)
// leaves the pool instead of going on failing; see conn.go.
func Open(ctx context.Context, cfg Config) (*sql.DB, error) {
	sync, busy := cfg.Synchronous, cfg.BusyTimeout
	if sync == "" {
		sync = Full
	}
	if busy == 0 {
		busy = DefaultBusyTimeout
	}
	switch {
	case cfg.Path == "":
		return nil, errors.New("empty path")
	case sync != Full && sync != Normal:
		return nil, fmt.Errorf("synchronous %q: want FULL or NORMAL", sync)
	case busy < 0:
		return nil, fmt.Errorf("busy timeout %v is negative", busy)
	case cfg.Migrations == nil:
		return nil, errors.New("no migrations")
	}
	memory := cfg.Path == ":memory:"
	dsn, abs, err := dataSource(cfg.Path, sync, busy)
	if err != nil {
		return nil, err
	}
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(&connector{base: base, path: abs})
	if memory {
		// Every connection to ":memory:" is a database of its own, so the
		// pool holds exactly one, forever.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxIdleTime(0)
	} else {
		db.SetMaxOpenConns(PoolSize())
		// Idle connections keep their prepared statements, so all of them
		// may stay, but only while they are used.
		db.SetMaxIdleConns(PoolSize())
		db.SetConnMaxIdleTime(idleTimeout)
	}
	db.SetConnMaxLifetime(0)
	if err := migrate(ctx, db, cfg.Migrations, busy); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// dataSource returns the driver's DSN for path, creating the file first,
// and the file's absolute path ("" for ":memory:").
//
// The pragmas go in as _pragma=name(value), the driver's own dialect: it
// runs them on every new connection, busy_timeout first. (The driver's
// newer _busy_timeout style keys, borrowed from mattn/go-sqlite3, are
// silently ignored by releases before them, which would turn off foreign
// keys and the busy timeout without a word.)
func dataSource(name string, sync Synchronous, busy time.Duration) (dsn, abs string, err error) {
	params := url.Values{}
	params.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	params.Add("_pragma", "foreign_keys(1)")
	params.Set("_txlock", "immediate")
	if name == ":memory:" {
		return ":memory:?" + params.Encode(), "", nil
	}
	if abs, err = filepath.Abs(name); err != nil {
		return "", "", err
	}
	if err := createFile(abs); err != nil {
		return "", "", err
	}
	params.Add("_pragma", "journal_mode(WAL)")
	params.Add("_pragma", "synchronous("+string(sync)+")")
	return fileURI(abs, params), abs, nil
}

// createFile makes sure the database file exists with mode 0600 before
// SQLite opens it; SQLite itself would create it 0644 (less umask). The
// -wal and -shm files SQLite creates next to it copy its mode.
func createFile(name string) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// fileURI returns the SQLite URI for the file at abs, so that any character
// in the path ('?', '#', '%') is escaped rather than taken for a parameter.
func fileURI(abs string, params url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: params.Encode()}
	return u.String()
}

// ErrReadOnly is returned by Ping when the database answers but cannot be
// written: its connection came up read-only, or the files could not be
// opened for writing by a new connection.
var ErrReadOnly = errors.New("database is read-only")

// ErrSchemaTooNew is returned by Open and Migrate when the database records
// a migration numbered past every one they were given: a newer build wrote
// this schema, and an older one must not write to what it does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this build knows")

// Ping is a readiness check: nil only if the database answers and can be
// written. It costs no lock and writes nothing, so that a check every few
// seconds neither waits behind writers nor slows them (BEGIN IMMEDIATE
// would take the write lock, and in WAL mode it succeeds even on a
// read-only connection; BenchmarkPing measures both). It fails
//
//   - when no connection can be had, or the database is closed;
//   - when reading the database header fails (PRAGMA schema_version, which
//     goes through the pager: an I/O error, a file that is not a database);
//   - with ErrReadOnly when the connection it used came up read-only;
//   - with ErrReadOnly when the file, or its -wal or -shm file, could not be
//     opened for writing now (see checkWritable): a new connection would
//     come up read-only, and the pool opens new ones all the time.
//
// A *sql.DB opened elsewhere is checked the same way, its file found with
// PRAGMA database_list.
func Ping(ctx context.Context, db *sql.DB) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var version int64
	if err := c.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return err
	}
	var (
		file     string
		known    bool // file is known without asking SQLite
		readOnly bool
	)
	err = c.Raw(func(dc any) error {
		if own, ok := dc.(*conn); ok {
			file, known = own.path, true
		}
		r, ok := dc.(readOnlyReporter)
		if !ok {
			return nil // another driver: the file check below still runs
		}
		var err error
		readOnly, err = r.IsReadOnly("main")
		return err
	})
	if err != nil {
		return err
	}
	if readOnly {
		return fmt.Errorf("%w: the connection was opened read-only", ErrReadOnly)
	}
	if !known {
		if err := c.QueryRowContext(ctx,
			`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
			return err
		}
	}
	if file == "" {
		return nil // in memory
	}
	if err := checkWritable(file); err != nil {
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return nil
}

// Migrate applies, in order of their numbers, the migrations in
// migrations (NNNN_name.sql files at its root, NNNN > 0, each number once)
// that the database's schema_migrations table does not record, each in a
// transaction together with its record, so that a failed migration leaves
// nothing behind. Every name is checked before anything is applied, and a
// database that records a number past the newest migration given is
// refused with ErrSchemaTooNew before anything is applied.
//
// Each transaction checks the record again first, so that processes
// opening a new database at once apply each migration exactly once. While
// that fails with SQLITE_BUSY, Migrate tries again, for up to
// DefaultBusyTimeout: when several processes start together on a file that
// does not exist yet, one of them now and then gets SQLITE_BUSY at once,
// without the busy timeout being waited out, presumably while another is
// turning the new file to WAL.
func Migrate(ctx context.Context, db *sql.DB, migrations fs.FS) error {
	return migrate(ctx, db, migrations, DefaultBusyTimeout)
}

type migration struct {
	version int
	name    string
	body    string
}

func migrate(ctx context.Context, db *sql.DB, fsys fs.FS, retryFor time.Duration) error {
	list, err := readMigrations(fsys)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(retryFor)
	wait := 5 * time.Millisecond
	for {
		err := apply(ctx, db, list)
		if err == nil || !isBusy(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// readMigrations reads and checks every migration in fsys, in order.
func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	list := make([]migration, 0, len(names))
	seen := map[int]string{}
	for _, name := range names {
		prefix, _, ok := strings.Cut(path.Base(name), "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		if prev, dup := seen[version]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same number", prev, name)
		}
		seen[version] = name
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		list = append(list, migration{version: version, name: name, body: string(body)})
	}
	slices.SortFunc(list, func(a, b migration) int { return a.version - b.version })
	return list, nil
}

func apply(ctx context.Context, db *sql.DB, list []migration) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var newest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	known := 0
	if len(list) > 0 {
		known = list[len(list)-1].version
	}
	if newest.Valid && newest.Int64 > int64(known) {
		return fmt.Errorf("%w: the database is at version %d, this build knows versions up to %d",
			ErrSchemaTooNew, newest.Int64, known)
	}
	for _, m := range list {
		if err := applyOne(ctx, db, m); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	return nil
}

func applyOne(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var applied bool
	if err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, m.version,
	).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.body); err != nil {
		return err
	}
	// applied_at is for a person reading the table (unix microseconds,
	// UTC); no rule reads it, so the wall clock is good enough.
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixMicro(),
	); err != nil {
		return err
	}
	return tx.Commit()
}

// isBusy reports SQLITE_BUSY, in any of its extended forms.
func isBusy(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	return ok && e.Code()&0xff == sqlite3.SQLITE_BUSY
}
