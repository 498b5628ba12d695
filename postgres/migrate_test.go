package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

func TestLoadMigrations(t *testing.T) {
	if len(migrations) == 0 || migrations[0].version != 1 || migrations[0].name != "0001_init.sql" {
		t.Fatalf("embedded migrations start with %+v, want 0001_init.sql", migrations[0])
	}
	for i := 1; i < len(migrations); i++ {
		if migrations[i].version <= migrations[i-1].version {
			t.Errorf("migrations out of order: %s after %s", migrations[i].name, migrations[i-1].name)
		}
	}

	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int // nil: an error
		wantErr string
	}{
		{"sorted by number, not by name", fstest.MapFS{
			"migrations/0010_b.sql": sql, "migrations/0002_a.sql": sql, "migrations/0001_z.sql": sql,
		}, []int{1, 2, 10}, ""},
		{"no number", fstest.MapFS{"migrations/init.sql": sql}, nil, "NNNN_description.sql"},
		{"version zero", fstest.MapFS{"migrations/0000_init.sql": sql}, nil, "NNNN_description.sql"},
		{"same version twice", fstest.MapFS{
			"migrations/0001_a.sql": sql, "migrations/001_b.sql": sql,
		}, nil, "same version"},
		{"none", fstest.MapFS{}, nil, "no migrations"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := loadMigrations(tc.files)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadMigrations error = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("versions = %v, want %v", got, tc.want)
			}
		})
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

func wantMigrations() []string {
	var want []string
	for _, m := range migrations {
		want = append(want, fmt.Sprintf("%d %s", m.version, m.name))
	}
	return want
}

// TestOpenConcurrently starts three replicas at once on an empty schema,
// several times over: every Open succeeds and each migration is recorded
// exactly once. Without the lock, two of them run CREATE TABLE at once and
// one fails.
func TestOpenConcurrently(t *testing.T) {
	url := testURL(t)
	admin := newAdminConn(t, url)
	for round := range 5 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			schema := newTestSchema(t)
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
			if got, want := recordedMigrations(t, admin, schema), wantMigrations(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("schema_migrations = %q, want %q", got, want)
			}
		})
	}
}

// TestOpenWaitsForMigrationLock holds the migration lock of a new schema
// and checks that Open waits for it rather than migrating beside its
// holder, then goes on once it is released.
func TestOpenWaitsForMigrationLock(t *testing.T) {
	url := testURL(t)
	schema := newTestSchema(t)
	admin := newAdminConn(t, url)
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT pg_advisory_xact_lock($1)`, lockKey(schema)); err != nil {
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
	url := testURL(t)
	schema := newTestSchema(t)
	mustOpen(t, Config{URL: url, Schema: schema})
	admin := newAdminConn(t, url)
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
	for _, want := range []string{"9999", fmt.Sprintf("up to %d", latestVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not name %q", err, want)
		}
	}
}

// TestSchemaNameQuoted puts Latchkey in a schema whose name needs quoting
// (upper case, a space, a double quote), through the first Open, which
// creates it, and a second, which finds it migrated.
func TestSchemaNameQuoted(t *testing.T) {
	schema := newNamedTestSchema(t, randomName(`Latchkey "Auth" `))
	cfg := Config{URL: testURL(t), Schema: schema}
	s := mustOpen(t, cfg)
	if err := s.CreateUser(t.Context(), &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	again := mustOpen(t, cfg)
	if _, err := again.UserByUsername(t.Context(), "ALICE"); err != nil {
		t.Fatalf("UserByUsername through the second Store: %v", err)
	}
	var n int
	if err := newAdminConn(t, testURL(t)).QueryRow(t.Context(),
		`SELECT count(*) FROM `+pgx.Identifier{schema, "users"}.Sanitize()).Scan(&n); err != nil || n != 1 {
		t.Errorf("users in %q: %d, %v; want 1", schema, n, err)
	}
}

// TestReopenNeedsNoDDL opens a migrated schema as a role that may read and
// write its tables but not create anything: a restart must not need DDL.
func TestReopenNeedsNoDDL(t *testing.T) {
	url := testURL(t)
	schema := newTestSchema(t)
	mustOpen(t, Config{URL: url, Schema: schema})

	admin := newAdminConn(t, url)
	role := randomName("latchkey_test_role_")
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

	u := withParams(t, url, "user", role)
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
