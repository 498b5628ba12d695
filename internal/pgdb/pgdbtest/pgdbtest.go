// Package pgdbtest gives Latchkey's tests a PostgreSQL server of their
// own making: the server named by LATCHKEY_TEST_POSTGRES_URL (the test
// skips, saying so, without it), a schema or a database no other test
// uses, dropped when the test ends, an administrative connection beside
// the one under test, and the means to end that one's sessions.
//
// It is for tests only, and links nothing of Latchkey, so that the
// PostgreSQL plumbing (internal/pgdb), the auth store and the books store
// share one set of helpers.
package pgdbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// URL returns the URL of the PostgreSQL server tests may use, or skips.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("LATCHKEY_TEST_POSTGRES_URL")
	if u == "" {
		tb.Skipf("LATCHKEY_TEST_POSTGRES_URL not set")
	}
	return u
}

// Name returns prefix followed by random hex: a valid unquoted identifier
// unique to this run.
func Name(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// WithParams returns rawURL with the query parameters key, value, ... set.
func WithParams(tb testing.TB, rawURL string, kv ...string) string {
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

// Admin returns a connection of its own to the database at rawURL, named
// latchkey_test_admin so it is never among the sessions a test ends, and
// closed when the test ends.
func Admin(tb testing.TB, rawURL string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), WithParams(tb, rawURL, "application_name", "latchkey_test_admin"))
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Schema returns the name of a schema no other test uses, not created,
// and drops it with everything in it when the test ends.
func Schema(tb testing.TB) string {
	tb.Helper()
	return NamedSchema(tb, Name("latchkey_test_"))
}

// NamedSchema is Schema for a name of the caller's choice.
func NamedSchema(tb testing.TB, schema string) string {
	tb.Helper()
	admin := Admin(tb, URL(tb))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			tb.Errorf("drop schema %q: %v", schema, err)
		}
	})
	return schema
}

// Database creates a database of its own, for a test that changes
// database-wide settings or refuses connections, and returns its name and
// URL. It is dropped, its connections with it, when the test ends.
func Database(tb testing.TB) (name, url string) {
	tb.Helper()
	base := URL(tb)
	admin := Admin(tb, base)
	name = Name("latchkey_test_")
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
	return name, WithParams(tb, base, "dbname", name)
}

// Terminate ends the server sessions that match where (a condition on
// pg_stat_activity) and returns how many it ended.
func Terminate(tb testing.TB, admin *pgx.Conn, where string, args ...any) int {
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

// Eventually calls f until it returns nil or the timeout passes, and
// returns the last error.
func Eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
