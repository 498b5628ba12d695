package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgdb"
)

// Pool defaults, used for what neither Config nor the URL sets; they are
// internal/pgdb's, which the books store shares.
const (
	DefaultMaxConns          = pgdb.DefaultMaxConns
	DefaultMinConns          = pgdb.DefaultMinConns
	DefaultMaxConnIdleTime   = pgdb.DefaultMaxConnIdleTime
	DefaultHealthCheckPeriod = pgdb.DefaultHealthCheckPeriod
	DefaultConnectTimeout    = pgdb.DefaultConnectTimeout
)

// Config says which database to open and how to pool its connections.
type Config struct {
	// URL is a PostgreSQL connection string, postgres://user@host/db?...
	// or "host=... dbname=...". pgx's pool parameters in it
	// (pool_max_conns, pool_min_conns, pool_max_conn_idle_time,
	// pool_health_check_period, pool_max_conn_lifetime) apply unless the
	// field below is set; connect_timeout and application_name too.
	URL string

	// Schema, if set, is the schema Latchkey's tables live in. Open
	// creates it if absent and every connection uses it as search_path,
	// overriding any search_path in URL. Empty: the connection's own
	// search_path decides (usually "public").
	Schema string

	// MaxConns bounds the pool: at most this many connections are open.
	// Zero: pool_max_conns from URL, else DefaultMaxConns.
	MaxConns int32
	// MinConns connections are kept open even when idle. Zero:
	// pool_min_conns from URL, else DefaultMinConns. Use a negative
	// value for none.
	MinConns int32
	// MaxConnIdleTime closes connections idle for longer. Zero:
	// pool_max_conn_idle_time from URL, else DefaultMaxConnIdleTime.
	MaxConnIdleTime time.Duration
	// HealthCheckPeriod is how often idle connections are checked. Zero:
	// pool_health_check_period from URL, else DefaultHealthCheckPeriod.
	HealthCheckPeriod time.Duration
}

// ErrSchemaTooNew is returned by Open when the database's schema was
// migrated by a newer Latchkey than this one: this build does not know
// the schema and refuses to use it. Upgrade the binary, or restore a
// backup taken before the newer version ran.
var ErrSchemaTooNew = pgdb.ErrSchemaTooNew

// ErrReadOnly is returned by Ping when the database answers but would
// refuse writes: it is a hot standby (in recovery), or its sessions
// start read-only (default_transaction_read_only). The auth server writes
// on almost every request, so such a database is not ready.
var ErrReadOnly = pgdb.ErrReadOnly

// Store is a latchkey.Store on a PostgreSQL database. It is safe for
// concurrent use, and any number of Stores, in one process or in several,
// may share one database.
type Store struct {
	db   *pgdb.DB
	pool *pgxpool.Pool // db.Pool, which every query uses
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationsTable records the applied migrations; its advisory lock key
// is derived from it and the schema (pgdb.MigrationLockKey).
const migrationsTable = "schema_migrations"

var _ latchkey.Store = (*Store)(nil)

// Open connects to the database, applies the migrations it lacks and
// returns a Store. It fails, with an error naming the step, when the URL
// cannot be parsed, the server cannot be reached or refuses the login, a
// migration fails, or the schema is newer than this build
// (ErrSchemaTooNew). Errors never contain the URL's password.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db, err := pgdb.Open(ctx, pgdb.Config{
		URL:               cfg.URL,
		Schema:            cfg.Schema,
		MaxConns:          cfg.MaxConns,
		MinConns:          cfg.MinConns,
		MaxConnIdleTime:   cfg.MaxConnIdleTime,
		HealthCheckPeriod: cfg.HealthCheckPeriod,
		ApplicationName:   "latchkey",
		Migrations:        migrations,
		MigrationsTable:   migrationsTable,
	})
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return &Store{db: db, pool: db.Pool}, nil
}

// Close implements latchkey.Store. It waits for connections in use to be
// released, and may be called more than once.
func (s *Store) Close() error {
	s.db.Close()
	return nil
}

// Ping implements latchkey.Store, for readiness: nil only if the database
// answers and accepts writes (ErrReadOnly otherwise; see doc.go).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// constraintErr maps a duplicate to ErrConflict and a missing parent row
// to ErrNotFound, keeping the driver's error in the chain for the log.
func constraintErr(err error) error {
	switch pgdb.SQLState(err) {
	case pgdb.CodeUniqueViolation:
		return fmt.Errorf("%w: %w", latchkey.ErrConflict, err)
	case pgdb.CodeForeignKeyViolation:
		return fmt.Errorf("%w: %w", latchkey.ErrNotFound, err)
	}
	return err
}

// timeArg converts t for a query argument: the zero time is NULL.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// timeCol scans a timestamptz column in UTC, NULL as the zero time. pgx
// itself returns times in the local zone.
type timeCol struct{ t *time.Time }

func (c timeCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*c.t = time.Time{}
	case v.InfinityModifier != pgtype.Finite:
		return fmt.Errorf("timestamptz is %v, want a finite time", v.InfinityModifier)
	default:
		*c.t = v.Time.UTC()
	}
	return nil
}

// oneRow turns an Exec that changed no row into ErrNotFound.
func oneRow(tag pgconn.CommandTag, err error) error {
	if err == nil && tag.RowsAffected() == 0 {
		return latchkey.ErrNotFound
	}
	return err
}
