package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgdb"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

// embeddedMigrations lists the store's migrations as "version name",
// in version order, from the files themselves.
func embeddedMigrations(tb testing.TB) []string {
	tb.Helper()
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		tb.Fatalf("embedded migrations: %v, %d files", err, len(names))
	}
	var out []string
	for _, n := range names { // Glob sorts by name, and the names are zero-padded
		base := path.Base(n)
		v, err := strconv.Atoi(base[:4])
		if err != nil {
			tb.Fatalf("migration %s: %v", base, err)
		}
		out = append(out, fmt.Sprintf("%d %s", v, base))
	}
	return out
}

// TestEmbeddedMigrations: the store's migrations start at 0001_init.sql
// and number on without a gap, so none can be skipped. How a migrations
// directory is read is internal/pgdb's, tested there.
func TestEmbeddedMigrations(t *testing.T) {
	got := embeddedMigrations(t)
	if got[0] != "1 0001_init.sql" {
		t.Fatalf("embedded migrations start with %s, want 0001_init.sql", got[0])
	}
	for i, m := range got {
		if !strings.HasPrefix(m, fmt.Sprintf("%d ", i+1)) {
			t.Errorf("migration %d is %s: the numbers must go on without a gap", i+1, m)
		}
	}
}

// recordedMigrations returns schema's schema_migrations rows as
// "version name" strings.
func recordedMigrations(tb testing.TB, conn *pgx.Conn, schema string) []string {
	tb.Helper()
	rows, err := conn.Query(tb.Context(),
		`SELECT version || ' ' || name FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+` ORDER BY version`)
	if err != nil {
		tb.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

func wantMigrations(tb testing.TB) []string { return embeddedMigrations(tb) }

// TestOpenConcurrently starts three replicas at once on an empty schema,
// several times over: every Open succeeds and each migration is recorded
// exactly once. Without the lock, two of them run CREATE TABLE at once and
// one fails.
func TestOpenConcurrently(t *testing.T) {
	url := pgdbtest.URL(t)
	admin := pgdbtest.Admin(t, url)
	for round := range 5 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			schema := pgdbtest.Schema(t)
			start := make(chan struct{})
			errs := make(chan error, 3)
			for range cap(errs) {
				go func() {
					<-start
					s, err := Open(t.Context(), Config{URL: url, Schema: schema})
					if err == nil {
						s.Close()
					}
					errs <- err
				}()
			}
			close(start)
			for range cap(errs) {
				if err := <-errs; err != nil {
					t.Errorf("Open: %v", err)
				}
			}
			if got, want := recordedMigrations(t, admin, schema), wantMigrations(t); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("schema_migrations = %q, want %q", got, want)
			}
		})
	}
}

// TestOpenWaitsForMigrationLock holds the migration lock of a new schema
// and checks that Open waits for it rather than migrating beside its
// holder, then goes on once it is released.
func TestOpenWaitsForMigrationLock(t *testing.T) {
	url := pgdbtest.URL(t)
	schema := pgdbtest.Schema(t)
	admin := pgdbtest.Admin(t, url)
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT pg_advisory_xact_lock($1)`, pgdb.MigrationLockKey(migrationsTable, schema)); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		s, err := Open(t.Context(), Config{URL: url, Schema: schema})
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Open returned (%v) while another session held the migration lock", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := tx.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Open after the lock was released: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Open still waiting 30s after the lock was released")
	}
}

func TestSchemaTooNew(t *testing.T) {
	url := pgdbtest.URL(t)
	schema := pgdbtest.Schema(t)
	mustOpen(t, Config{URL: url, Schema: schema})
	admin := pgdbtest.Admin(t, url)
	if _, err := admin.Exec(t.Context(), `INSERT INTO `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+
		` (version, name) VALUES (9999, '9999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}

	s, err := Open(t.Context(), Config{URL: url, Schema: schema})
	if err == nil {
		s.Close()
		t.Fatal("Open on a schema newer than this build succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("Open error = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{"9999", fmt.Sprintf("up to %d", len(embeddedMigrations(t)))} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not name %q", err, want)
		}
	}
}

// TestSchemaNameQuoted puts Latchkey in a schema whose name needs quoting
// (upper case, a space, a double quote), through the first Open, which
// creates it, and a second, which finds it migrated.
func TestSchemaNameQuoted(t *testing.T) {
	schema := pgdbtest.NamedSchema(t, pgdbtest.Name(`Latchkey "Auth" `))
	cfg := Config{URL: pgdbtest.URL(t), Schema: schema}
	s := mustOpen(t, cfg)
	if err := s.CreateUser(t.Context(), &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, cfg)
	if _, err := again.UserByUsername(t.Context(), "ALICE"); err != nil {
		t.Fatalf("UserByUsername through the second Store: %v", err)
	}
	var n int
	if err := pgdbtest.Admin(t, pgdbtest.URL(t)).QueryRow(t.Context(),
		`SELECT count(*) FROM `+pgx.Identifier{schema, "users"}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Errorf("users in %q: %d, %v; want 1", schema, n, err)
	}
}

// TestReopenNeedsNoDDL opens a migrated schema as a role that may read and
// write its tables but not create anything: a restart must not need DDL.
func TestReopenNeedsNoDDL(t *testing.T) {
	url := pgdbtest.URL(t)
	schema := pgdbtest.Schema(t)
	mustOpen(t, Config{URL: url, Schema: schema})

	admin := pgdbtest.Admin(t, url)
	role := pgdbtest.Name("latchkey_test_role_")
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN`,
		`GRANT USAGE ON SCHEMA ` + schema + ` TO ` + role,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + schema + ` TO ` + role,
	} {
		if _, err := admin.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, q := range []string{`DROP OWNED BY ` + role, `DROP ROLE ` + role} {
			if _, err := admin.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})

	u := pgdbtest.WithParams(t, url, "user", role)
	s := mustOpen(t, Config{URL: u, Schema: schema})
	err := s.CreateUser(t.Context(), &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0})
	if err != nil {
		t.Fatalf("CreateUser as the unprivileged role: %v", err)
	}
	// And the role cannot create tables: had Open needed to, it would have failed.
	if _, err := s.pool.Exec(t.Context(), `CREATE TABLE probe (x int)`); err == nil {
		t.Fatal("the test role may create tables; the test proves nothing")
	}
}

// TestUsernameFoldsASCIIOnly: usernames are unique without regard to
// ASCII case only, as on SQLite, whatever the database's locale would do
// to other letters.
func TestUsernameFoldsASCIIOnly(t *testing.T) {
	s := newTestStore(t)
	ctx := t.Context()
	for _, u := range []*latchkey.User{
		{ID: "u1", Username: "Émile", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0},
		{ID: "u2", Username: "émile", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0},
	} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser(%q): %v", u.Username, err)
		}
	}
	if err := s.CreateUser(ctx, &latchkey.User{ID: "u3", Username: "éMILE", Role: latchkey.RoleMember, CreatedAt: t0}); !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("CreateUser(éMILE) after émile: error = %v, want ErrConflict", err)
	}
	tests := []struct{ lookup, wantID string }{
		{"ÉMILE", "u1"},
		{"émile", "u2"},
		{"éMiLe", "u2"},
	}
	for _, tc := range tests {
		u, err := s.UserByUsername(ctx, tc.lookup)
		if err != nil || u.ID != tc.wantID {
			t.Errorf("UserByUsername(%q) = %v, %v; want %s", tc.lookup, u, err, tc.wantID)
		}
	}
}
