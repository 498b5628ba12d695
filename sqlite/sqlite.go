package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey-dev/latchkey"
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for another connection's (or
// another process's) write lock before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a latchkey.Store backed by one SQLite database. It is safe for
// concurrent use, and several processes may share one database file.
type Store struct {
	db    *sql.DB
	stmts *stmts
	rot   *rotator
}

var _ latchkey.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating it if needed, and
// brings its schema up to date. The path ":memory:" opens a private
// in-memory database, gone on Close.
//
// A new database file is created with mode 0600 and a missing parent
// directory with 0700, since the database holds the signing keys; an
// existing file keeps its mode.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite: empty path")
	}
	params := url.Values{}
	params.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	params.Set("_foreign_keys", "1")
	params.Set("_txlock", "immediate")

	var dsn string
	memory := path == ":memory:"
	if memory {
		dsn = ":memory:?" + params.Encode()
	} else {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		if err := createFile(abs); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		params.Set("_journal_mode", "WAL")
		params.Set("_synchronous", "FULL")
		dsn = fileURI(abs, params)
	}

	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if memory {
		// Every connection to ":memory:" is a database of its own, so the
		// pool holds exactly one, forever.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	} else {
		// WAL lets readers run beside the one writer; writers queue on the
		// database's write lock under busy_timeout.
		n := max(4, runtime.GOMAXPROCS(0))
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
	}

	s := &Store{db: db, stmts: &stmts{db: db}}
	if err := s.migrateRetrying(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := s.stmts.prepare(ctx, txQueries); err != nil {
		s.stmts.close()
		db.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.startRotator()
	return s, nil
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

// Close implements latchkey.Store.
func (s *Store) Close() error {
	s.stopRotator()
	s.stmts.close()
	return s.db.Close()
}

// Ping implements latchkey.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	// PingContext only checks that a connection exists; run a statement so
	// that a broken file is noticed too.
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// migrateRetrying is migrate, tried again while it fails with SQLITE_BUSY,
// for up to busyTimeout. When several processes start at once on a file
// that does not exist yet, one of them now and then gets SQLITE_BUSY at
// once, without busy_timeout being waited out (about one run in thirty of
// TestOpenConcurrently), presumably while another is turning the new file
// to WAL. Every migration checks whether it was applied inside its own
// transaction, so running migrate again is safe.
func (s *Store) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	wait := 5 * time.Millisecond
	for {
		err := s.migrate(ctx)
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

// migrate applies, in order, every embedded migration that the database
// has not recorded yet. Each runs in an IMMEDIATE transaction that first
// checks the record again, so that two processes opening a new database at
// once apply each migration exactly once.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := s.migrateOne(ctx, name); err != nil {
			return fmt.Errorf("migrate %s: %w", path.Base(name), err)
		}
	}
	return nil
}

func (s *Store) migrateOne(ctx context.Context, name string) error {
	base := path.Base(name)
	prefix, _, ok := strings.Cut(base, "_")
	version, err := strconv.Atoi(prefix)
	if !ok || err != nil || version <= 0 {
		return errors.New("name must be NNNN_description.sql")
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var applied bool
	if err := tx.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`, version,
	).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return nil
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		version, base, time.Now().UnixMicro(),
	); err != nil {
		return err
	}
	return tx.Commit()
}

// Times are stored as unix microseconds in UTC; the zero time is NULL.

// timeArg converts t for a query argument.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeCol scans a time column.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("time column holds %T, want INTEGER", v)
	}
	return nil
}

// isConstraint reports whether err is a violation of one of the given
// extended SQLite constraint codes. It goes by the driver's error code,
// never by message text.
func isConstraint(err error, codes ...int) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code() == c {
			return true
		}
	}
	return false
}

// isBusy reports SQLITE_BUSY, in any of its extended forms.
func isBusy(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	return ok && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isUnique reports a UNIQUE or PRIMARY KEY violation: a duplicate.
func isUnique(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// isForeignKey reports a FOREIGN KEY violation: a missing parent row.
func isForeignKey(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}
