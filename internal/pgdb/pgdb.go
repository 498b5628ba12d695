// Package pgdb opens a PostgreSQL database the way Latchkey's PostgreSQL
// stores need it: a bounded pgxpool, the schema brought up to date from
// embedded numbered migrations under an advisory lock, a schema newer than
// the build refused, connections that report a suspect state closed
// instead of pooled, and a Ping that refuses a read-only database.
//
// It knows none of the stores' tables and imports nothing of Latchkey, so
// that books (written as a third party would write it) can share it with
// the auth server's store instead of keeping a second copy. It is internal
// because it is no API for other people's code.
//
// # Pool
//
// The pool is bounded (Config.MaxConns, default DefaultMaxConns), keeps
// MinConns open, closes connections idle for MaxConnIdleTime, and checks
// idle connections every HealthCheckPeriod. A connection idle for more
// than a second is pinged before pgxpool hands it out, so after a database
// restart the pool refills by itself. pgx prepares each query text once
// per connection and keeps it (its default statement cache), so hot
// queries are not parsed again on every call.
//
// # Migrations
//
// Open applies the migrations the database has not recorded, each in its
// own transaction that first takes a transaction-scoped advisory lock
// (pg_advisory_xact_lock) and then reads the record again: processes that
// start together on an empty database queue on the lock, the first applies
// each migration and the others find it recorded. The lock ends with the
// transaction, so a process that dies mid-migration leaves neither a lock
// nor half a migration behind. A restart on an up-to-date schema reads the
// record without locking or running DDL, so the database role needs no DDL
// privilege once an operator has migrated the schema. A recorded version
// newer than every migration given fails Open with ErrSchemaTooNew.
//
// # Faults
//
// A lost connection fails the calls using it with an error and leaves the
// pool. A connection that reports the database read-only (SQLSTATE 25006),
// an I/O error (class 58) or corruption (XX001, XX002) is closed instead of
// going back to the pool, and a read-only report also drops the pool's
// other connections (at most once a second): a PostgreSQL session keeps
// default_transaction_read_only from its start, so the connections opened
// while the database was read-only would otherwise go on failing writes
// long after it is writable again.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool defaults, used for what neither Config nor the URL sets.
const (
	// DefaultMaxConns bounds the pool. A request holds a connection for a
	// statement or two of a millisecond, so ten serve thousands of requests
	// a second, and several servers stay well under PostgreSQL's default
	// max_connections of 100.
	DefaultMaxConns = 10
	// DefaultMinConns keeps one connection open, so that the first
	// request after a quiet spell does not pay for a new connection.
	DefaultMinConns = 1
	// DefaultMaxConnIdleTime closes connections a burst opened once the
	// burst is over, so that a server gives back what it does not use.
	DefaultMaxConnIdleTime = 5 * time.Minute
	// DefaultHealthCheckPeriod is how often idle connections are checked
	// against MaxConnIdleTime and the connection lifetime, and the pool
	// refilled to MinConns.
	DefaultHealthCheckPeriod = 30 * time.Second
	// DefaultConnectTimeout bounds one connection attempt, so that an
	// unreachable host fails Open (and a request) instead of hanging.
	DefaultConnectTimeout = 10 * time.Second
)

// Config says which database to open, how to pool its connections and
// which schema it must have.
type Config struct {
	// URL is a PostgreSQL connection string, postgres://user@host/db?...
	// or "host=... dbname=...". pgx's pool parameters in it
	// (pool_max_conns, pool_min_conns, pool_max_conn_idle_time,
	// pool_health_check_period, pool_max_conn_lifetime) apply unless the
	// field below is set; connect_timeout and application_name too.
	// Required.
	URL string

	// Schema, if set, is the schema the tables live in. Open creates it if
	// absent and every connection uses it as search_path, overriding any
	// search_path in URL. Empty: the connection's own search_path decides
	// (usually "public").
	Schema string

	// MaxConns bounds the pool: at most this many connections are open.
	// Zero: pool_max_conns from URL, else DefaultMaxConns.
	MaxConns int32
	// MinConns connections are kept open even when idle. Zero:
	// pool_min_conns from URL, else DefaultMinConns. Negative: none.
	MinConns int32
	// MaxConnIdleTime closes connections idle for longer. Zero:
	// pool_max_conn_idle_time from URL, else DefaultMaxConnIdleTime.
	MaxConnIdleTime time.Duration
	// HealthCheckPeriod is how often idle connections are checked. Zero:
	// pool_health_check_period from URL, else DefaultHealthCheckPeriod.
	HealthCheckPeriod time.Duration

	// ApplicationName names the connections in pg_stat_activity unless
	// URL sets application_name. Empty: "latchkey".
	ApplicationName string

	// Migrations holds the schema as NNNN_name.sql files at its root
	// (NNNN > 0, each number once). Required.
	Migrations fs.FS
	// MigrationsTable is the table, in the schema, that records the
	// migrations applied. Stores that may share a schema need tables of
	// their own. Empty: "schema_migrations".
	MigrationsTable string
}

// ErrSchemaTooNew is returned by Open when the database records a
// migration numbered past every one in Config.Migrations: a newer build
// migrated it, and this one must not write to a schema it does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this build knows")

// ErrReadOnly is returned by Ping when the database answers but would
// refuse writes: it is a hot standby (in recovery), or its sessions start
// read-only (default_transaction_read_only).
var ErrReadOnly = errors.New("database is read-only")

// DB is an open pool. It is safe for concurrent use.
type DB struct {
	// Pool runs the store's queries.
	Pool *pgxpool.Pool
	// lastReset is when (unix nanoseconds) the pool's connections were last
	// dropped because the database was found read-only.
	lastReset atomic.Int64
}

// Open connects, applies the migrations the database lacks and returns
// the pool. It fails, with an error naming the step, when the
// configuration or URL is wrong, the server cannot be reached or refuses
// the login, a migration fails, or the schema is newer than the
// migrations given (ErrSchemaTooNew). Errors never contain the URL's
// password.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	list, err := readMigrations(cfg.Migrations)
	if err != nil {
		return nil, err
	}
	table := cfg.MigrationsTable
	if table == "" {
		table = "schema_migrations"
	}
	pcfg, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{}
	pcfg.ConnConfig.Tracer = &tracer{db: db}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	db.Pool = pool
	// NewWithConfig connects lazily; connect now so that a wrong URL or an
	// unreachable server fails Open with the connection's own error.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	m := migrator{pool: pool, table: table, list: list}
	if err := m.migrate(ctx, cfg.Schema); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// poolConfig parses cfg.URL and applies the bounds, with precedence
// Config field, then URL parameter, then default.
func poolConfig(cfg Config) (*pgxpool.Config, error) {
	if cfg.URL == "" {
		return nil, errors.New("empty URL")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, err
	}
	// pgxpool.ParseConfig removes its pool_ parameters and fills in its
	// own defaults, so the URL is read once more to tell which it set.
	raw, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, err
	}
	inURL := func(key string) bool { _, ok := raw.RuntimeParams[key]; return ok }

	switch {
	case cfg.MaxConns > 0:
		pcfg.MaxConns = cfg.MaxConns
	case cfg.MaxConns < 0:
		return nil, fmt.Errorf("MaxConns %d: must be positive", cfg.MaxConns)
	case !inURL("pool_max_conns"):
		pcfg.MaxConns = DefaultMaxConns
	}
	switch {
	case cfg.MinConns > 0:
		pcfg.MinConns = cfg.MinConns
	case cfg.MinConns < 0:
		pcfg.MinConns = 0
	case !inURL("pool_min_conns"):
		pcfg.MinConns = DefaultMinConns
	}
	if pcfg.MinConns > pcfg.MaxConns {
		return nil, fmt.Errorf("MinConns %d exceeds MaxConns %d", pcfg.MinConns, pcfg.MaxConns)
	}
	switch {
	case cfg.MaxConnIdleTime > 0:
		pcfg.MaxConnIdleTime = cfg.MaxConnIdleTime
	case !inURL("pool_max_conn_idle_time"):
		pcfg.MaxConnIdleTime = DefaultMaxConnIdleTime
	}
	switch {
	case cfg.HealthCheckPeriod > 0:
		pcfg.HealthCheckPeriod = cfg.HealthCheckPeriod
	case !inURL("pool_health_check_period"):
		pcfg.HealthCheckPeriod = DefaultHealthCheckPeriod
	}

	cc := pcfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = DefaultConnectTimeout
	}
	if cc.RuntimeParams["application_name"] == "" {
		name := cfg.ApplicationName
		if name == "" {
			name = "latchkey"
		}
		cc.RuntimeParams["application_name"] = name
	}
	if cfg.Schema != "" {
		cc.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	return pcfg, nil
}

// Close closes the pool, waiting for connections in use to be released.
// It may be called more than once; calls on the pool afterwards fail.
func (db *DB) Close() { db.Pool.Close() }

// Ping is a readiness check: nil only if the database answers and accepts
// writes. A read-only answer also drops the pool's connections (see the
// package doc), so that the next Ping, on a new connection, sees the
// database as it is now rather than as it was when the connection it
// happened to use was opened.
func (db *DB) Ping(ctx context.Context) error {
	var recovery bool
	var readOnly string
	err := db.Pool.QueryRow(ctx,
		`SELECT pg_is_in_recovery(), current_setting('transaction_read_only')`,
	).Scan(&recovery, &readOnly)
	if err != nil {
		return err
	}
	if recovery || readOnly == "on" {
		db.dropConnections()
		if recovery {
			return fmt.Errorf("%w: the server is a standby in recovery", ErrReadOnly)
		}
		return fmt.Errorf("%w: transactions start read-only", ErrReadOnly)
	}
	return nil
}

// resetInterval is the least time between two dropConnections that act.
const resetInterval = time.Second

// dropConnections closes the pool's idle connections now and the others
// when they are released, at most once per resetInterval, so that a
// database that stays read-only costs one round of reconnections per
// interval rather than one per request.
func (db *DB) dropConnections() {
	now := time.Now().UnixNano()
	last := db.lastReset.Load()
	if now-last < int64(resetInterval) || !db.lastReset.CompareAndSwap(last, now) {
		return
	}
	db.Pool.Reset()
}

// SQLSTATE codes the package and its callers act on.
const (
	CodeUniqueViolation     = "23505"
	CodeForeignKeyViolation = "23503"
	CodeReadOnlyTransaction = "25006"
	CodeDataCorrupted       = "XX001"
	CodeIndexCorrupted      = "XX002"
)

// SQLState returns err's SQLSTATE, or "" if the server did not send one.
func SQLState(err error) string {
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		return e.Code
	}
	return ""
}

// evictKey marks, in a connection's CustomData, one that must not go back
// to the pool.
const evictKey = "latchkey.evict"

// tracer watches every statement's outcome, on every connection of the
// pool, for errors that make the connection itself suspect.
type tracer struct{ db *DB }

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (t *tracer) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err == nil {
		return
	}
	code := SQLState(data.Err)
	switch {
	case code == CodeReadOnlyTransaction:
		conn.PgConn().CustomData()[evictKey] = true
		t.db.dropConnections()
	case code == CodeDataCorrupted, code == CodeIndexCorrupted,
		len(code) == 5 && code[:2] == "58": // system errors: I/O, missing file
		conn.PgConn().CustomData()[evictKey] = true
	}
}

// TraceRelease closes a marked connection, which makes the pool destroy
// it instead of keeping it. pgxpool calls it before it decides.
func (t *tracer) TraceRelease(_ *pgxpool.Pool, data pgxpool.TraceReleaseData) {
	if data.Conn.PgConn().CustomData()[evictKey] == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	data.Conn.Close(ctx) // the error is of no use: the connection is gone either way
}

var (
	_ pgx.QueryTracer       = (*tracer)(nil)
	_ pgxpool.ReleaseTracer = (*tracer)(nil)
)
