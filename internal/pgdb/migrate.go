package pgdb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migration is one NNNN_name.sql file.
type migration struct {
	version int
	name    string // the file's base name, recorded beside the version
	body    string
}

// readMigrations reads and checks every migration at fsys's root, in
// ascending version order; there must be at least one.
func readMigrations(fsys fs.FS) ([]migration, error) {
	if fsys == nil {
		return nil, errors.New("no migrations")
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
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
			return nil, fmt.Errorf("migration %s: %w", base, err)
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
		return nil, errors.New("no migrations")
	}
	return ms, nil
}

// migrator applies list to the database behind pool, recording them in
// table.
type migrator struct {
	pool  *pgxpool.Pool
	table string
	list  []migration
}

// latest is the newest version the migrator knows.
func (m *migrator) latest() int { return m.list[len(m.list)-1].version }

// migrate brings the schema up to date; see the package doc. schema is
// Config.Schema, "" for the connection's own search_path.
func (m *migrator) migrate(ctx context.Context, schema string) error {
	if schema == "" {
		// The lock's key names the schema the tables go to: the first on
		// search_path that exists.
		var current *string
		if err := m.pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&current); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if current == nil {
			return errors.New("migrate: no schema on search_path exists; set one in the URL or the schema option")
		}
		schema = *current
	}
	applied, err := m.applied(ctx, m.pool)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := m.checkNotTooNew(applied); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, mg := range m.list {
		if slices.Contains(applied, mg.version) {
			continue
		}
		if err := m.applyOne(ctx, schema, mg); err != nil {
			return fmt.Errorf("migrate %s: %w", mg.name, err)
		}
	}
	return nil
}

// querier is what a pool and a transaction both offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// applied returns the versions recorded in the migrations table, none if
// the table does not exist yet. to_regclass looks the table up on
// search_path without failing, and without the CREATE privilege that
// CREATE TABLE IF NOT EXISTS would need even for a table that exists.
func (m *migrator) applied(ctx context.Context, q querier) ([]int, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`,
		pgx.Identifier{m.table}.Sanitize()).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, nil
	}
	rows, err := q.Query(ctx, `SELECT version FROM `+pgx.Identifier{m.table}.Sanitize()+` ORDER BY version`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

// checkNotTooNew fails with ErrSchemaTooNew if the database records a
// version past the newest the migrator knows.
func (m *migrator) checkNotTooNew(applied []int) error {
	if len(applied) == 0 {
		return nil
	}
	if v := slices.Max(applied); v > m.latest() {
		return fmt.Errorf("%w: the database is at version %d, this build knows versions up to %d",
			ErrSchemaTooNew, v, m.latest())
	}
	return nil
}

// applyOne applies mg in a transaction under the schema's advisory lock,
// unless another process applied it while this one waited for the lock.
func (m *migrator) applyOne(ctx context.Context, schema string, mg migration) error {
	tx, err := m.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit, a no-op

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, MigrationLockKey(m.table, schema)); err != nil {
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
	applied, err := m.applied(ctx, tx)
	if err != nil {
		return err
	}
	if applied == nil {
		if _, err := tx.Exec(ctx, `CREATE TABLE `+pgx.Identifier{m.table}.Sanitize()+` (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create %s: %w", m.table, err)
		}
	}
	if err := m.checkNotTooNew(applied); err != nil {
		return err
	}
	if slices.Contains(applied, mg.version) {
		return tx.Commit(ctx)
	}
	// Without arguments pgx sends the file as one simple-protocol query,
	// which may hold several statements.
	if _, err := tx.Exec(ctx, mg.body); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx,
		`INSERT INTO `+pgx.Identifier{m.table}.Sanitize()+` (version, name) VALUES ($1, $2)`, mg.version, mg.name,
	); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// MigrationLockKey is the advisory lock that migrations recorded in table of
// schema take: a hash of a Latchkey-specific prefix, the table and the
// schema, so that it neither collides with other applications' locks in
// practice nor serializes stores in different schemas or with different
// tables. For "schema_migrations" it is the key postgres/ has always used,
// so that the auth store can move onto this package without a release in
// which old and new replicas migrate under different locks.
func MigrationLockKey(table, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("latchkey " + table + "\x00" + schema))
	return int64(h.Sum64())
}
