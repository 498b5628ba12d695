package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one embedded migrations/NNNN_name.sql file.
type migration struct {
	version int
	name    string // the file's base name, recorded beside the version
	body    string
}

// migrations are the embedded migrations in ascending version order.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		panic(err) // a build with a badly named migration must not exist
	}
	return ms
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		prefix, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: version, name: base, body: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// latestVersion is the newest schema version this build knows.
func latestVersion() int { return migrations[len(migrations)-1].version }

const createMigrationsTable = `
	CREATE TABLE schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`

// migrate brings the schema up to date; see doc.go for the design. schema
// is Config.Schema, "" for the connection's own search_path.
func (s *Store) migrate(ctx context.Context, schema string) error {
	if schema == "" {
		// The lock's key names the schema the tables go to: the first on
		// search_path that exists.
		var current *string
		if err := s.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&current); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if current == nil {
			return errors.New("migrate: no schema on search_path exists; set one in the URL or Config.Schema")
		}
		schema = *current
	}

	applied, err := s.appliedVersions(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := checkNotTooNew(applied); err != nil {
		return err
	}
	for _, m := range migrations {
		if slices.Contains(applied, m.version) {
			continue
		}
		if err := s.migrateOne(ctx, schema, m); err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	return nil
}

// querier is what a pool and a transaction both offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// appliedVersions returns the versions recorded in schema_migrations,
// none if the table does not exist yet. to_regclass looks the table up on
// search_path without failing, and without the CREATE privilege that
// CREATE TABLE IF NOT EXISTS would need even for a table that exists.
func (s *Store) appliedVersions(ctx context.Context, q querier) ([]int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// checkNotTooNew fails with ErrSchemaTooNew if the database records a
// version past this build's newest.
func checkNotTooNew(applied []int) error {
	if len(applied) == 0 {
		return nil
	}
	if v := slices.Max(applied); v > latestVersion() {
		return fmt.Errorf("%w: the database is at version %d, this build knows versions up to %d",
			ErrSchemaTooNew, v, latestVersion())
	}
	return nil
}

// migrateOne applies m in a transaction under the schema's advisory lock,
// unless another process applied it while this one waited for the lock.
func (s *Store) migrateOne(ctx context.Context, schema string, m migration) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit, a no-op

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	// Under the lock, nobody else creates the schema or the table; look
	// before creating, so that a role without the CREATE privilege can
	// start once they exist.
	var schemaExists bool
	if err := tx.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema,
	).Scan(&schemaExists); err != nil {
		return err
	}
	if !schemaExists {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	applied, err := s.appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	if applied == nil {
		if _, err := tx.Exec(ctx, createMigrationsTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
	}
	if err := checkNotTooNew(applied); err != nil {
		return err
	}
	if slices.Contains(applied, m.version) {
		return tx.Commit(ctx)
	}
	// Without arguments pgx sends the file as one simple-protocol query,
	// which may hold several statements.
	if _, err := tx.Exec(ctx, m.body); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name,
	); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// lockKey is the advisory lock migrations of schema take: a hash of a
// Latchkey-specific prefix and the schema name, so that it neither
// collides with other applications' locks in practice nor serializes
// Latchkey instances in different schemas.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("latchkey schema_migrations\x00" + schema))
	return int64(h.Sum64())
}
