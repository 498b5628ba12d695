package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// t0 is the tests' reference time, in UTC to the microsecond as the
// Service writes times.
var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 535897000, time.UTC)

// tokenHash returns a stand-in for a refresh token's SHA-256 hash.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// seedSpec describes rows that seed writes straight into a schema's
// tables with COPY, far faster than through the Store.
type seedSpec struct {
	users    int
	sessions int // spread over the users in turn
	first    int // the first session's number, so that seeds can be added
	// expires returns the expiry of session i; nil: a week after t0.
	expires func(i int) time.Time
}

func seedUserID(i int) string    { return fmt.Sprintf("u%07d", i) }
func seedSessionID(i int) string { return fmt.Sprintf("s%08d", i) }

// seedTokens are the hashes of session i's two tokens: the previous one
// and the current one.
func seedTokens(i int) (previous, current []byte) {
	id := seedSessionID(i)
	return tokenHash(id + "/0"), tokenHash(id + "/1")
}

// seed writes the users and sessions of spec, each session with two
// refresh tokens, into schema, and then VACUUM ANALYZEs the tables so that
// the planner and the visibility map see them as a long-running database
// would.
func seed(tb testing.TB, conn *pgx.Conn, schema string, spec seedSpec) {
	tb.Helper()
	ctx := tb.Context()
	if spec.users > 0 {
		_, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "users"},
			[]string{"id", "username", "role", "password_hash", "disabled", "created_at"},
			pgx.CopyFromFunc(counter(spec.users, func(i int) []any {
				return []any{seedUserID(i), fmt.Sprintf("user%07d", i), "member",
					"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", false, t0}
			})))
		if err != nil {
			tb.Fatalf("copy users: %v", err)
		}
	}
	if spec.sessions > 0 {
		expires := spec.expires
		if expires == nil {
			expires = func(int) time.Time { return t0.Add(7 * 24 * time.Hour) }
		}
		_, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "sessions"},
			[]string{"id", "user_id", "created_at", "last_used_at", "expires_at",
				"current_hash", "previous_hash", "previous_retired_at", "previous_successor"},
			pgx.CopyFromFunc(counter(spec.sessions, func(k int) []any {
				i := spec.first + k
				prev, cur := seedTokens(i)
				return []any{seedSessionID(i), seedUserID(i % max(spec.users, 1)), t0, t0, expires(i),
					cur, prev, t0, make([]byte, 71)}
			})))
		if err != nil {
			tb.Fatalf("copy sessions: %v", err)
		}
		_, err = conn.CopyFrom(ctx, pgx.Identifier{schema, "refresh_tokens"},
			[]string{"hash", "session_id", "issued_at"},
			pgx.CopyFromFunc(counter(2*spec.sessions, func(k int) []any {
				i := spec.first + k/2
				prev, cur := seedTokens(i)
				if k%2 == 0 {
					return []any{prev, seedSessionID(i), t0}
				}
				return []any{cur, seedSessionID(i), t0}
			})))
		if err != nil {
			tb.Fatalf("copy refresh_tokens: %v", err)
		}
	}
	for _, table := range []string{"users", "sessions", "refresh_tokens"} {
		if _, err := conn.Exec(ctx, `VACUUM ANALYZE `+pgx.Identifier{schema, table}.Sanitize()); err != nil {
			tb.Fatalf("vacuum %s: %v", table, err)
		}
	}
}

// counter adapts a row function to pgx.CopyFromFunc's shape: rows 0..n-1.
func counter(n int, row func(i int) []any) func() ([]any, error) {
	i := 0
	return func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		i++
		return row(i - 1), nil
	}
}

// countRows returns the number of rows in schema.table.
func countRows(tb testing.TB, conn *pgx.Conn, schema, table string) int {
	tb.Helper()
	var n int
	if err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM `+pgx.Identifier{schema, table}.Sanitize()).Scan(&n); err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	return n
}
