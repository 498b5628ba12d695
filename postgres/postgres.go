package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey-dev/latchkey"
)

// Pool defaults, used for what neither Config nor the URL sets.
const (
	// DefaultMaxConns bounds the pool. A refresh holds a connection for
	// two short statements, so ten serve far more refreshes per second
	// than a replica's CPUs can sign tokens for, and three replicas stay
	// well under PostgreSQL's default max_connections of 100.
	DefaultMaxConns = 10
	// DefaultMinConns keeps one connection open, so that the first
	// request after a quiet spell does not pay for a new connection.
	DefaultMinConns = 1
	// DefaultMaxConnIdleTime closes connections a burst opened once the
	// burst is over, so that a replica gives back what it does not use.
	DefaultMaxConnIdleTime = 5 * time.Minute
	// DefaultHealthCheckPeriod is how often idle connections are checked
	// against MaxConnIdleTime and the connection lifetime, and the pool
	// refilled to MinConns.
	DefaultHealthCheckPeriod = 30 * time.Second
	// DefaultConnectTimeout bounds one connection attempt, so that an
	// unreachable host fails Open (and a request) instead of hanging.
	DefaultConnectTimeout = 10 * time.Second
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
var ErrSchemaTooNew = errors.New("database schema is newer than this build of Latchkey")

// ErrReadOnly is returned by Ping when the database answers but would
// refuse writes: it is a hot standby (in recovery), or its sessions
// start read-only (default_transaction_read_only). The auth server writes
// on almost every request, so such a database is not ready.
var ErrReadOnly = errors.New("database is read-only")

// Store is a latchkey.Store on a PostgreSQL database. It is safe for
// concurrent use, and any number of Stores, in one process or in several,
// may share one database.
type Store struct {
	pool *pgxpool.Pool
	// lastReset is when (unix nanoseconds) the pool's connections were last
	// dropped because the database was found read-only.
	lastReset atomic.Int64
}

var _ latchkey.Store = (*Store)(nil)

// Open connects to the database, applies the migrations it lacks and
// returns a Store. It fails, with an error naming the step, when the URL
// cannot be parsed, the server cannot be reached or refuses the login, a
// migration fails, or the schema is newer than this build
// (ErrSchemaTooNew). Errors never contain the URL's password.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pcfg, err := poolConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s := &Store{}
	pcfg.ConnConfig.Tracer = &tracer{s: s}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	s.pool = pool
	// NewWithConfig connects lazily; connect now so that a wrong URL or
	// an unreachable server fails Open with the connection's own error.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: connect: %w", err)
	}
	if err := s.migrate(ctx, cfg.Schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return s, nil
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
		// Names the server's connections in pg_stat_activity.
		cc.RuntimeParams["application_name"] = "latchkey"
	}
	if cfg.Schema != "" {
		cc.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	return pcfg, nil
}

// Close implements latchkey.Store. It waits for connections in use to be
// released, and may be called more than once.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping implements latchkey.Store, for readiness: nil only if the database
// answers and accepts writes. A read-only answer also drops the pool's
// connections (see doc.go), so that the next Ping, on a new connection,
// sees the database as it is now rather than as it was when the
// connection it happened to use was opened.
func (s *Store) Ping(ctx context.Context) error {
	var recovery bool
	var readOnly string
	err := s.pool.QueryRow(ctx,
		`SELECT pg_is_in_recovery(), current_setting('transaction_read_only')`,
	).Scan(&recovery, &readOnly)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if recovery || readOnly == "on" {
		s.dropConnections()
		if recovery {
			return fmt.Errorf("ping: %w: the server is a standby in recovery", ErrReadOnly)
		}
		return fmt.Errorf("ping: %w: transactions start read-only", ErrReadOnly)
	}
	return nil
}

// resetInterval is the least time between two dropConnections that act.
const resetInterval = time.Second

// dropConnections closes the pool's idle connections now and the others
// when they are released, at most once per resetInterval, so that a
// database that stays read-only costs one round of reconnections per
// interval rather than one per request.
func (s *Store) dropConnections() {
	now := time.Now().UnixNano()
	last := s.lastReset.Load()
	if now-last < int64(resetInterval) || !s.lastReset.CompareAndSwap(last, now) {
		return
	}
	s.pool.Reset()
}

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeReadOnlyTransaction = "25006"
	codeDataCorrupted       = "XX001"
	codeIndexCorrupted      = "XX002"
)

// sqlState returns err's SQLSTATE, or "" if the server did not send one.
func sqlState(err error) string {
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		return e.Code
	}
	return ""
}

// constraintErr maps a duplicate to ErrConflict and a missing parent row
// to ErrNotFound, keeping the driver's error in the chain for the log.
func constraintErr(err error) error {
	switch sqlState(err) {
	case codeUniqueViolation:
		return fmt.Errorf("%w: %w", latchkey.ErrConflict, err)
	case codeForeignKeyViolation:
		return fmt.Errorf("%w: %w", latchkey.ErrNotFound, err)
	}
	return err
}

// evictKey marks, in a connection's CustomData, one that must not go back
// to the pool.
const evictKey = "latchkey.evict"

// tracer watches every statement's outcome, on every connection of the
// pool, for errors that make the connection itself suspect.
type tracer struct{ s *Store }

func (t *tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (t *tracer) TraceQueryEnd(_ context.Context, conn *pgx.Conn, data pgx.TraceQueryEndData) {
	if data.Err == nil {
		return
	}
	code := sqlState(data.Err)
	switch {
	case code == codeReadOnlyTransaction:
		conn.PgConn().CustomData()[evictKey] = true
		t.s.dropConnections()
	case code == codeDataCorrupted, code == codeIndexCorrupted,
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
