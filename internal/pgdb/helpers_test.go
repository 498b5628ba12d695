package pgdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
)

// testURL returns the URL of the PostgreSQL server tests may use, or
// skips the test.
func testURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if u == "" {
		tb.Skipf("LATCHKEY_TEST_POSTGRES_URL not set")
	}
	return u
}

// randomName returns prefix followed by random hex, a valid unquoted
// identifier unique to this test run.
func randomName(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// newTestSchema returns the name of a schema no other test uses, not yet
// created, and drops it (with everything in it) when the test ends.
func newTestSchema(tb testing.TB) string {
	tb.Helper()
	schema := randomName("latchkey_test_")
	admin := newAdminConn(tb, testURL(tb))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			tb.Errorf("drop schema %q: %v", schema, err)
		}
	})
	return schema
}

// newTestDatabase creates a database of its own for a test that changes
// database-wide settings, and returns its name and URL. It is dropped,
// its connections with it, when the test ends.
func newTestDatabase(tb testing.TB) (name, url string) {
	tb.Helper()
	base := testURL(tb)
	admin := newAdminConn(tb, base)
	name = randomName("latchkey_test_")
	if _, err := admin.Exec(tb.Context(), `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			tb.Errorf("drop database %s: %v", name, err)
		}
	})
	return name, withParams(tb, base, "dbname", name)
}

// newAdminConn returns a connection of its own to the database at rawURL,
// closed when the test ends.
func newAdminConn(tb testing.TB, rawURL string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), withParams(tb, rawURL, "application_name", "latchkey_test_admin"))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// withParams returns rawURL with the query parameters key, value, ... set.
func withParams(tb testing.TB, rawURL string, kv ...string) string {
	tb.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		tb.Fatalf("LATCHKEY_TEST_POSTGRES_URL must be a URL: %v", err)
	}
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// terminate ends the server sessions that match where (a condition on
// pg_stat_activity) and returns how many it ended.
func terminate(tb testing.TB, admin *pgx.Conn, where string, args ...any) int {
	tb.Helper()
	var n int
	err := admin.QueryRow(tb.Context(), `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND `+where, args...).Scan(&n)
	if err != nil {
		tb.Fatalf("terminate: %v", err)
	}
	return n
}

// eventually calls f until it returns nil or the timeout passes, and
// returns the last error.
func eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// schema is a two-step schema: the second migration needs the first.
var schema = fstest.MapFS{
	"0001_items.sql": {Data: []byte(`CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL);`)},
	"0002_tags.sql": {Data: []byte(`CREATE TABLE tags (item bigint NOT NULL REFERENCES items (id), tag text NOT NULL);
		CREATE INDEX tags_item ON tags (item);`)},
}

// with returns schema plus the given files.
func with(files fstest.MapFS) fstest.MapFS {
	all := fstest.MapFS{}
	for k, v := range schema {
		all[k] = v
	}
	for k, v := range files {
		all[k] = v
	}
	return all
}

// mustOpen opens cfg, with schema's migrations unless it names others,
// and closes the pool when the test ends.
func mustOpen(tb testing.TB, cfg Config) *DB {
	tb.Helper()
	if cfg.Migrations == nil {
		cfg.Migrations = schema
	}
	db, err := Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}
