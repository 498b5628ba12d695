package postgres

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
	return newNamedTestSchema(tb, randomName("latchkey_test_"))
}

// newNamedTestSchema is newTestSchema for a name of the caller's choice.
func newNamedTestSchema(tb testing.TB, schema string) string {
	tb.Helper()
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

// newAdminConn returns a connection of its own (not a Store's) to the
// database at rawURL, closed when the test ends.
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

// mustOpen opens a Store and closes it when the test ends.
func mustOpen(tb testing.TB, cfg Config) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newTestStore opens a Store in a fresh schema of its own.
func newTestStore(tb testing.TB) *Store {
	tb.Helper()
	return mustOpen(tb, Config{URL: testURL(tb), Schema: newTestSchema(tb)})
}
