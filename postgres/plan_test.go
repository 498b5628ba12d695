package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

// TestHotPathPlans seeds tables large enough that the planner prefers an
// index wherever one helps, and checks that no hot statement scans a
// whole table, both in the plan made for the arguments at hand (custom)
// and in the one PostgreSQL switches a prepared statement to after five
// runs (generic), since pgx keeps every statement prepared. Run with -v to
// see the plans.
func TestHotPathPlans(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 50,000 sessions")
	}
	const users, sessions = 5000, 50000
	schema := pgdbtest.Schema(t)
	mustOpen(t, Config{URL: pgdbtest.URL(t), Schema: schema})
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	began := time.Now()
	seed(t, admin, schema, seedSpec{users: users, sessions: sessions,
		expires: func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }})
	t.Logf("seeded %d users, %d sessions, %d tokens in %v", users, sessions, 2*sessions, time.Since(began).Round(time.Millisecond))

	conn, err := pgx.Connect(t.Context(), pgdbtest.WithParams(t, pgdbtest.URL(t), "search_path", schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })

	_, current := seedTokens(123)
	tests := []struct {
		name  string
		query string
		args  []any
	}{
		{"SessionAndUserByTokenHash", sessionAndUserByTokenHash, []any{current}},
		{"SessionByTokenHash", sessionByTokenHash, []any{current}},
		{"UserByUsername", userByUsername, []any{"USER0000123"}},
		{"RotateRefreshToken", rotateSession, []any{seedSessionID(123), current, t0, []byte("sealed"), tokenHash("new"), t0}},
		{"ListSessions", listSessions, []any{seedUserID(123)}},
		{"RevokeUserSessions", revokeUserSessions, []any{seedUserID(123), t0, "test", ""}},
		{"DeleteExpiredSessions batch", deleteExpiredBatch, []any{t0.Add(time.Hour), purgeBatch}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []string{"custom", "generic"} {
				plan := explain(t, conn, mode, tc.query, tc.args)
				t.Logf("%s plan:\n%s", mode, plan)
				for _, table := range []string{"users", "sessions", "refresh_tokens"} {
					if strings.Contains(plan, "Seq Scan on "+table) {
						t.Errorf("%s plan scans all of %s", mode, table)
					}
				}
			}
		})
	}
}

// explain returns the plan of query as a prepared statement in the given
// plan_cache_mode ("custom" or "generic"), without running it.
func explain(tb testing.TB, conn *pgx.Conn, mode, query string, args []any) string {
	tb.Helper()
	ctx := tb.Context()
	for _, q := range []string{
		`DEALLOCATE ALL`,
		`SET plan_cache_mode = force_` + mode + `_plan`,
		`PREPARE q AS ` + query,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	placeholders := make([]string, len(args))
	for i := range args {
		placeholders[i] = fmt.Sprintf("$%d", i+1)
	}
	// The simple protocol sends the arguments as literals, which EXECUTE
	// takes as it would from a client's own SQL.
	rows, err := conn.Query(ctx, `EXPLAIN (COSTS OFF) EXECUTE q(`+strings.Join(placeholders, ", ")+`)`,
		append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		tb.Fatalf("explain: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		tb.Fatalf("explain: %v", err)
	}
	return strings.Join(lines, "\n")
}
