package pgdb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

func TestPoolConfig(t *testing.T) {
	const base = "postgres://latchkey@db.example:5432/latchkey"
	tests := []struct {
		name string
		cfg  Config
		// Each check is what the parsed pool config must show.
		maxConns, minConns int32
		idle, health       time.Duration
		connectTimeout     time.Duration
		appName            string
		searchPath         string
	}{
		{
			name:     "defaults",
			cfg:      Config{URL: base},
			maxConns: DefaultMaxConns, minConns: DefaultMinConns,
			idle: DefaultMaxConnIdleTime, health: DefaultHealthCheckPeriod,
			connectTimeout: DefaultConnectTimeout, appName: "latchkey",
		},
		{
			name:     "URL parameters apply",
			cfg:      Config{URL: base + "?pool_max_conns=3&pool_min_conns=2&pool_max_conn_idle_time=1m&pool_health_check_period=5s&connect_timeout=4&application_name=books-a", ApplicationName: "latchkey-books"},
			maxConns: 3, minConns: 2, idle: time.Minute, health: 5 * time.Second,
			connectTimeout: 4 * time.Second, appName: "books-a",
		},
		{
			name:     "fields override the URL",
			cfg:      Config{URL: base + "?pool_max_conns=3&pool_min_conns=2&search_path=other", MaxConns: 20, MinConns: 5, MaxConnIdleTime: time.Hour, HealthCheckPeriod: time.Second, Schema: "Latchkey Books", ApplicationName: "latchkey-books"},
			maxConns: 20, minConns: 5, idle: time.Hour, health: time.Second,
			connectTimeout: DefaultConnectTimeout, appName: "latchkey-books", searchPath: `"Latchkey Books"`,
		},
		{
			name:     "negative MinConns keeps none",
			cfg:      Config{URL: base, MinConns: -1},
			maxConns: DefaultMaxConns, minConns: 0,
			idle: DefaultMaxConnIdleTime, health: DefaultHealthCheckPeriod,
			connectTimeout: DefaultConnectTimeout, appName: "latchkey",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := poolConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if p.MaxConns != tc.maxConns || p.MinConns != tc.minConns {
				t.Errorf("MaxConns, MinConns = %d, %d; want %d, %d", p.MaxConns, p.MinConns, tc.maxConns, tc.minConns)
			}
			if p.MaxConnIdleTime != tc.idle || p.HealthCheckPeriod != tc.health {
				t.Errorf("MaxConnIdleTime, HealthCheckPeriod = %v, %v; want %v, %v", p.MaxConnIdleTime, p.HealthCheckPeriod, tc.idle, tc.health)
			}
			if got := p.ConnConfig.ConnectTimeout; got != tc.connectTimeout {
				t.Errorf("ConnectTimeout = %v, want %v", got, tc.connectTimeout)
			}
			if got := p.ConnConfig.RuntimeParams["application_name"]; got != tc.appName {
				t.Errorf("application_name = %q, want %q", got, tc.appName)
			}
			if tc.searchPath != "" {
				if got := p.ConnConfig.RuntimeParams["search_path"]; got != tc.searchPath {
					t.Errorf("search_path = %q, want %q", got, tc.searchPath)
				}
			}
			for k := range p.ConnConfig.RuntimeParams {
				if strings.HasPrefix(k, "pool_") {
					t.Errorf("pool parameter %s would be sent to the server", k)
				}
			}
		})
	}
}

// TestOpenErrors: a wrong configuration or URL, or a server that cannot
// be reached or refuses the login, fails Open quickly with an error, and
// the error does not reveal the password.
func TestOpenErrors(t *testing.T) {
	url := pgdbtest.URL(t)
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	tests := []struct {
		name string
		cfg  Config
		want string // in the error message
	}{
		{"empty URL", Config{Migrations: schema}, "empty URL"},
		{"no migrations", Config{URL: url}, "no migrations"},
		{"empty migrations", Config{URL: url, Migrations: fstest.MapFS{}}, "no migrations"},
		{"migration without a number", Config{URL: url, Migrations: fstest.MapFS{"init.sql": sql}}, "NNNN_description.sql"},
		{"migration number zero", Config{URL: url, Migrations: fstest.MapFS{"0000_init.sql": sql}}, "NNNN_description.sql"},
		{"one number twice", Config{URL: url, Migrations: fstest.MapFS{"0001_a.sql": sql, "001_b.sql": sql}}, "same version"},
		{"not a URL", Config{URL: "postgres://latchkey:s3cret@%zz/db", Migrations: schema}, "cannot parse"},
		{"bad pool parameter", Config{URL: "postgres://latchkey:s3cret@127.0.0.1/db?pool_max_conns=lots", Migrations: schema}, "pool_max_conns"},
		{"MinConns above MaxConns", Config{URL: url, MaxConns: 2, MinConns: 3, Migrations: schema}, "exceeds MaxConns"},
		{"negative MaxConns", Config{URL: url, MaxConns: -1, Migrations: schema}, "must be positive"},
		{"nobody listening", Config{URL: "postgres://latchkey:s3cret@127.0.0.1:1/test?sslmode=disable", Migrations: schema}, "connect"},
		{"unknown database", Config{URL: pgdbtest.WithParams(t, url, "dbname", pgdbtest.Name("latchkey_missing_")), Migrations: schema}, "does not exist"},
		{"unknown role", Config{URL: pgdbtest.WithParams(t, url, "user", pgdbtest.Name("latchkey_nobody_"), "password", "s3cret"), Migrations: schema}, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			db, err := Open(ctx, tc.cfg)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("Open error = %q, want one saying %q", msg, tc.want)
			}
			if strings.Contains(msg, "s3cret") {
				t.Errorf("Open error reveals the password: %q", msg)
			}
			if ctx.Err() != nil {
				t.Errorf("Open took until the test's deadline")
			}
		})
	}
}

// recorded returns the rows of table in schema as "version name" strings.
func recorded(tb testing.TB, conn *pgx.Conn, schema, table string) []string {
	tb.Helper()
	rows, err := conn.Query(tb.Context(),
		`SELECT version || ' ' || name FROM `+pgx.Identifier{schema, table}.Sanitize()+` ORDER BY version`)
	if err != nil {
		tb.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// TestMigrate: the migrations are applied in order and recorded; a reopen
// with one more applies only that one; a broken one leaves nothing; and a
// second set recorded in a table of its own shares the schema without
// either set taking the other's records for its own.
func TestMigrate(t *testing.T) {
	ctx := t.Context()
	url, s := pgdbtest.URL(t), pgdbtest.Schema(t)
	admin := pgdbtest.Admin(t, url)
	mustOpen(t, Config{URL: url, Schema: s})
	if got, want := strings.Join(recorded(t, admin, s, "schema_migrations"), "; "), "1 0001_items.sql; 2 0002_tags.sql"; got != want {
		t.Errorf("recorded %q, want %q", got, want)
	}

	// A rerun of 0001 would fail: its table exists.
	db := mustOpen(t, Config{URL: url, Schema: s, Migrations: with(fstest.MapFS{
		"0003_notes.sql": {Data: []byte(`CREATE TABLE notes (body text);`)},
	})})
	if got := recorded(t, admin, s, "schema_migrations"); len(got) != 3 || got[2] != "3 0003_notes.sql" {
		t.Errorf("after a new migration: %q", got)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO tags (item, tag) VALUES (42, 'x')`); SQLState(err) != CodeForeignKeyViolation {
		t.Errorf("a tag for a missing item = %v, want SQLSTATE %s", err, CodeForeignKeyViolation)
	}

	_, err := Open(ctx, Config{URL: url, Schema: s, Migrations: with(fstest.MapFS{
		"0003_notes.sql":  {Data: []byte(`CREATE TABLE notes (body text);`)},
		"0004_broken.sql": {Data: []byte(`CREATE TABLE half (x int); SELECT * FROM no_such_table;`)},
	})})
	if err == nil || !strings.Contains(err.Error(), "0004_broken.sql") {
		t.Errorf("Open with a broken migration = %v, want an error naming it", err)
	}
	if got := recorded(t, admin, s, "schema_migrations"); len(got) != 3 {
		t.Errorf("the broken migration was recorded: %q", got)
	}
	var half bool
	if err := admin.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{s, "half"}.Sanitize()).Scan(&half); err != nil || half {
		t.Errorf("the broken migration's first statement stayed (%v, %v)", half, err)
	}

	// Another store's migrations in the same schema, in their own table.
	other := fstest.MapFS{"0001_shelves.sql": {Data: []byte(`CREATE TABLE shelves (id int);`)}}
	mustOpen(t, Config{URL: url, Schema: s, Migrations: other, MigrationsTable: "shelf_migrations"})
	if got, want := strings.Join(recorded(t, admin, s, "shelf_migrations"), "; "), "1 0001_shelves.sql"; got != want {
		t.Errorf("shelf_migrations = %q, want %q", got, want)
	}
	if got := recorded(t, admin, s, "schema_migrations"); len(got) != 3 {
		t.Errorf("the other store's migration changed schema_migrations: %q", got)
	}
}

// TestMigrateConcurrently is several servers starting at once on an empty
// schema: every Open succeeds and each migration is applied once.
func TestMigrateConcurrently(t *testing.T) {
	url, s := pgdbtest.URL(t), pgdbtest.Schema(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			db, err := Open(t.Context(), Config{URL: url, Schema: s, Migrations: schema, MaxConns: 2})
			if err == nil {
				db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	if got := recorded(t, pgdbtest.Admin(t, url), s, "schema_migrations"); len(got) != 2 {
		t.Errorf("schema_migrations = %q, want the 2 migrations once each", got)
	}
}

// TestSchemaTooNew: a schema migrated by a newer build is refused by an
// older one, before anything runs.
func TestSchemaTooNew(t *testing.T) {
	url, s := pgdbtest.URL(t), pgdbtest.Schema(t)
	newer := with(fstest.MapFS{"0003_notes.sql": {Data: []byte(`CREATE TABLE notes (body text);`)}})
	mustOpen(t, Config{URL: url, Schema: s, Migrations: newer}).Close()

	db, err := Open(t.Context(), Config{URL: url, Schema: s, Migrations: schema})
	if err == nil {
		db.Close()
		t.Fatal("an older build opened a newer schema")
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 3") {
		t.Errorf("Open = %v, want ErrSchemaTooNew naming version 3", err)
	}
	mustOpen(t, Config{URL: url, Schema: s, Migrations: newer})
}

// TestPingAndRecovery: while the database refuses connections, Ping fails;
// when it takes them again, the same pool works without being reopened.
func TestPingAndRecovery(t *testing.T) {
	name, url := pgdbtest.Database(t)
	db := mustOpen(t, Config{URL: url, MaxConns: 4})
	ctx := t.Context()
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	pgdbtest.Terminate(t, admin, `datname = $1`, name)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if err := db.Ping(ctx); err == nil {
			t.Errorf("Ping #%d succeeded while the database refuses connections", i)
		}
		cancel()
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	if err := pgdbtest.Eventually(10*time.Second, func() error { return db.Ping(ctx) }); err != nil {
		t.Fatalf("Ping after the database is back: %v", err)
	}
}

// TestReadOnlyDatabase: a database whose sessions start read-only is not
// ready, and once it is writable again the connections opened while it
// was read-only leave the pool at once, instead of failing writes until
// they age out.
func TestReadOnlyDatabase(t *testing.T) {
	const maxConns = 4
	name, url := pgdbtest.Database(t)
	db := mustOpen(t, Config{URL: url, MaxConns: maxConns})
	ctx := t.Context()
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	write := func() error {
		_, err := db.Pool.Exec(ctx, `INSERT INTO items (name) VALUES ('x')`)
		return err
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	pgdbtest.Terminate(t, admin, `datname = $1`, name) // new sessions start read-only

	err := pgdbtest.Eventually(10*time.Second, func() error {
		if err := db.Ping(ctx); !errors.Is(err, ErrReadOnly) {
			return fmt.Errorf("Ping error = %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := write(); SQLState(err) != CodeReadOnlyTransaction {
		t.Errorf("write on a read-only database = %v, want SQLSTATE %s", err, CodeReadOnlyTransaction)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 1 {
		t.Errorf("read on a read-only database = %d, %v; want 1", n, err)
	}
	// Fill the pool with read-only connections: several reads at once.
	time.Sleep(resetInterval) // let a new reset happen on the next read-only write
	conns := make([]*pgxpool.Conn, 0, maxConns)
	for range maxConns {
		c, err := db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	if got := db.Pool.Stat().TotalConns(); got != maxConns {
		t.Fatalf("pool holds %d connections, want %d", got, maxConns)
	}

	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` RESET default_transaction_read_only`); err != nil {
		t.Fatal(err)
	}
	// No connection is terminated this time: the pool must let go of its
	// read-only ones by itself. The first write fails on one of them, and
	// makes the pool drop them all.
	failures := 0
	err = pgdbtest.Eventually(5*time.Second, func() error {
		err := write()
		if err != nil {
			failures++
		}
		return err
	})
	if err != nil {
		t.Fatalf("writes still fail 5s after the database is writable: %v", err)
	}
	if failures > 1 {
		t.Errorf("%d writes failed after the database became writable, want at most 1", failures)
	}
	for range 3 * maxConns {
		if err := write(); err != nil {
			t.Fatalf("a read-only connection stayed in the pool: %v", err)
		}
	}
	if err := db.Ping(ctx); err != nil {
		t.Errorf("Ping on a writable database: %v", err)
	}
}

// TestSuspectConnectionsLeaveThePool runs statements that fail in
// different ways on a pool of one connection, and checks which failures
// replace the connection: those that make the connection suspect do, an
// ordinary refusal does not.
func TestSuspectConnectionsLeaveThePool(t *testing.T) {
	db := mustOpen(t, Config{URL: pgdbtest.URL(t), Schema: pgdbtest.Schema(t), MaxConns: 1, MinConns: -1})
	ctx := t.Context()
	tests := []struct {
		name     string
		code     string
		fail     func() error
		replaced bool
	}{
		{"foreign key violation", CodeForeignKeyViolation, func() error {
			_, err := db.Pool.Exec(ctx, `INSERT INTO tags (item, tag) VALUES (42, 'x')`)
			return err
		}, false},
		{"file missing (class 58)", "58P01", func() error {
			_, err := db.Pool.Exec(ctx, `SELECT pg_read_file('latchkey-nonexistent')`)
			return err
		}, true},
		{"read-only transaction", CodeReadOnlyTransaction, func() error {
			tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			_, err = tx.Exec(ctx, `INSERT INTO items (name) VALUES ('x')`)
			return err
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after int
			if err := db.Pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&before); err != nil {
				t.Fatal(err)
			}
			if err := tc.fail(); SQLState(err) != tc.code {
				t.Fatalf("error = %v, want SQLSTATE %s", err, tc.code)
			}
			if err := db.Pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&after); err != nil {
				t.Fatalf("the next statement: %v", err)
			}
			if replaced := after != before; replaced != tc.replaced {
				t.Errorf("connection replaced = %v, want %v", replaced, tc.replaced)
			}
		})
	}
}

// TestLockKey: for the auth store's table the key is the one postgres/
// computes (fnv-64a of "latchkey schema_migrations", NUL, the schema), and
// it differs by table and by schema.
func TestLockKey(t *testing.T) {
	for _, schema := range []string{"public", "Latchkey Auth"} {
		h := fnv.New64a()
		h.Write([]byte("latchkey schema_migrations\x00" + schema))
		if got, want := MigrationLockKey("schema_migrations", schema), int64(h.Sum64()); got != want {
			t.Errorf("MigrationLockKey(schema_migrations, %q) = %d, want postgres/'s %d", schema, got, want)
		}
	}
	if MigrationLockKey("schema_migrations", "public") == MigrationLockKey("books_schema_migrations", "public") {
		t.Error("two tables in one schema share a lock key")
	}
	if MigrationLockKey("schema_migrations", "a") == MigrationLockKey("schema_migrations", "b") {
		t.Error("two schemas share a lock key")
	}
}

// TestReadMigrations: versions come from the number, not from the order
// of the names.
func TestReadMigrations(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	ms, err := readMigrations(fstest.MapFS{"0010_b.sql": sql, "0002_a.sql": sql, "0001_z.sql": sql})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, m := range ms {
		got = append(got, m.version)
	}
	if fmt.Sprint(got) != "[1 2 10]" {
		t.Errorf("versions = %v, want [1 2 10]", got)
	}
}
