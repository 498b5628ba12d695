package postgres

import (
	"testing"

	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

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
	return mustOpen(tb, Config{URL: pgdbtest.URL(tb), Schema: pgdbtest.Schema(tb)})
}
