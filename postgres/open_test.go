package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

// TestOpenErrors: a URL that is wrong, or a server that cannot be reached
// or refuses the login, fails Open quickly with an error, and the error
// does not reveal the password.
func TestOpenErrors(t *testing.T) {
	url := pgdbtest.URL(t)
	tests := []struct {
		name string
		cfg  Config
		want string // in the error message
	}{
		{"empty URL", Config{}, "empty URL"},
		{"not a URL", Config{URL: "postgres://latchkey:s3cret@%zz/db"}, "cannot parse"},
		{"bad pool parameter", Config{URL: "postgres://latchkey:s3cret@127.0.0.1/db?pool_max_conns=lots"}, "pool_max_conns"},
		{"MinConns above MaxConns", Config{URL: url, MaxConns: 2, MinConns: 3}, "exceeds MaxConns"},
		{"nobody listening", Config{URL: "postgres://latchkey:s3cret@127.0.0.1:1/test?sslmode=disable"}, "connect"},
		{"unknown database", Config{URL: pgdbtest.WithParams(t, url, "dbname", pgdbtest.Name("latchkey_missing_"))}, "does not exist"},
		{"unknown role", Config{URL: pgdbtest.WithParams(t, url, "user", pgdbtest.Name("latchkey_nobody_"), "password", "s3cret")}, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, tc.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "open postgres: ") || !strings.Contains(msg, tc.want) {
				t.Errorf("Open error = %q, want one starting %q and saying %q", msg, "open postgres: ", tc.want)
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

func TestCanceledContext(t *testing.T) {
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.UserByID(ctx, "u1"); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByID(canceled) error = %v, want context.Canceled", err)
	}
}
