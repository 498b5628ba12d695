package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/sqlitedb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

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
// existing file keeps its mode. The pool holds at most
// sqlitedb.PoolSize() connections, and closes those idle for a minute. A
// connection that reports the file read-only, an I/O error or corruption
// leaves the pool, and one opened while the file could not be written
// leaves it as soon as the file can be, so that logins and rotations work
// again the moment the file is writable, without a restart.
func Open(ctx context.Context, path string) (*Store, error) {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	db, err := sqlitedb.Open(ctx, sqlitedb.Config{
		Path: path,
		// A revocation that comes back after a power cut is a security
		// bug; see doc.go.
		Synchronous: sqlitedb.Full,
		BusyTimeout: busyTimeout,
		Migrations:  migrations,
	})
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s := &Store{db: db, stmts: &stmts{db: db}}
	if err := s.stmts.prepare(ctx, txQueries); err != nil {
		s.stmts.close()
		db.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	s.startRotator()
	return s, nil
}

// Close implements latchkey.Store.
func (s *Store) Close() error {
	s.stopRotator()
	s.stmts.close()
	return s.db.Close()
}

// Ping implements latchkey.Store, for readiness: it fails, with
// sqlitedb.ErrReadOnly, when the database answers but cannot be written,
// since nearly every request of the auth server writes. It takes no lock.
func (s *Store) Ping(ctx context.Context) error {
	if err := sqlitedb.Ping(ctx, s.db); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
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

// isUnique reports a UNIQUE or PRIMARY KEY violation: a duplicate.
func isUnique(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// isForeignKey reports a FOREIGN KEY violation: a missing parent row.
func isForeignKey(err error) bool {
	return isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}
