package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

// newReplicas opens n Stores on one fresh schema, as n auth-server
// replicas sharing a database would.
func newReplicas(tb testing.TB, n int) (schema string, stores []*Store) {
	tb.Helper()
	schema = pgdbtest.Schema(tb)
	for range n {
		stores = append(stores, mustOpen(tb, Config{URL: pgdbtest.URL(tb), Schema: schema}))
	}
	return schema, stores
}

// TestRotateRaceAcrossReplicas: 20 rotations of one token at once, spread
// over three replicas, give exactly one success and 19 ErrConflict, round
// after round; no serialization failure or deadlock appears.
func TestRotateRaceAcrossReplicas(t *testing.T) {
	const contenders, rounds = 20, 10
	_, replicas := newReplicas(t, 3)
	ctx := t.Context()
	if err := replicas[0].CreateUser(ctx, &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	for round := range rounds {
		id := fmt.Sprint("s", round)
		if err := replicas[0].CreateSession(ctx, &latchkey.Session{ID: id, UserID: "u1", CreatedAt: t0, LastUsedAt: t0,
			ExpiresAt: t0.Add(time.Hour), CurrentHash: tokenHash(id + "/0")}); err != nil {
			t.Fatal(err)
		}
		newHash := func(i int) []byte { return tokenHash(fmt.Sprintf("%s contender %d", id, i)) }
		errs := make([]error, contenders)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range contenders {
			wg.Go(func() {
				r := latchkey.Rotation{SessionID: id, OldHash: tokenHash(id + "/0"), NewHash: newHash(i),
					SealedSuccessor: []byte("sealed"), At: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}
				<-start
				errs[i] = replicas[i%len(replicas)].RotateRefreshToken(ctx, r)
			})
		}
		began := time.Now()
		close(start)
		wg.Wait()
		slowest = max(slowest, time.Since(began))

		winner, conflicts := -1, 0
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Errorf("round %d: contenders %d and %d both rotated", round, winner, i)
				}
				winner = i
			case errors.Is(err, latchkey.ErrConflict):
				conflicts++
			default:
				t.Errorf("round %d: contender %d on replica %d: %v", round, i, i%len(replicas), err)
			}
		}
		if winner < 0 || conflicts != contenders-1 {
			t.Fatalf("round %d: winner %d, %d ErrConflict; want one winner and %d", round, winner, conflicts, contenders-1)
		}
		// Every replica sees the winner's token as current.
		for k, s := range replicas {
			got, err := s.Session(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			checkBytesEqual(t, fmt.Sprintf("round %d, replica %d: CurrentHash", round, k), got.CurrentHash, newHash(winner))
		}
	}
	t.Logf("%d rounds of %d contenders on %d replicas; slowest round %v", rounds, contenders, len(replicas), slowest)
}

func checkBytesEqual(tb testing.TB, what string, got, want []byte) {
	tb.Helper()
	if string(got) != string(want) {
		tb.Errorf("%s = %x, want %x", what, got, want)
	}
}

// TestDeleteExpiredSessionsBacklog purges more expired sessions than one
// batch holds: all go, with their tokens, and the live ones stay.
func TestDeleteExpiredSessionsBacklog(t *testing.T) {
	const expired, live = 2*purgeBatch + 500, 300
	schema := pgdbtest.Schema(t)
	s := mustOpen(t, Config{URL: pgdbtest.URL(t), Schema: schema})
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	cutoff := t0.Add(24 * time.Hour)
	seed(t, admin, schema, seedSpec{users: 10, sessions: expired,
		expires: func(i int) time.Time { return cutoff.Add(-time.Duration(i+1) * time.Second) }})
	seed(t, admin, schema, seedSpec{sessions: live, first: expired,
		expires: func(int) time.Time { return cutoff.Add(time.Hour) }})

	n, err := s.DeleteExpiredSessions(t.Context(), cutoff)
	if err != nil || n != expired {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want %d, nil", n, err, expired)
	}
	if got := countRows(t, admin, schema, "sessions"); got != live {
		t.Errorf("%d sessions left, want %d", got, live)
	}
	if got := countRows(t, admin, schema, "refresh_tokens"); got != 2*live {
		t.Errorf("%d refresh tokens left, want %d", got, 2*live)
	}
}

// TestDeleteExpiredSessionsConcurrently: three replicas purge one backlog
// at once while live sessions are being rotated. The purges neither fail
// nor count a session twice, and no rotation fails.
func TestDeleteExpiredSessionsConcurrently(t *testing.T) {
	const expired, live = 10 * purgeBatch, 50
	schema, replicas := newReplicas(t, 3)
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	cutoff := t0.Add(24 * time.Hour)
	seed(t, admin, schema, seedSpec{users: 10, sessions: expired,
		expires: func(i int) time.Time { return cutoff.Add(-time.Duration(i%7200+1) * time.Second) }})
	seed(t, admin, schema, seedSpec{sessions: live, first: expired,
		expires: func(int) time.Time { return cutoff.Add(time.Hour) }})

	ctx := t.Context()
	counts := make([]int, len(replicas))
	errs := make([]error, len(replicas))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for k, s := range replicas {
		wg.Go(func() {
			<-start
			counts[k], errs[k] = s.DeleteExpiredSessions(ctx, cutoff)
		})
	}
	wg.Go(func() {
		<-start
		for i := expired; i < expired+live; i++ {
			id := seedSessionID(i)
			_, cur := seedTokens(i)
			r := latchkey.Rotation{SessionID: id, OldHash: cur, NewHash: tokenHash(id + "/2"),
				At: cutoff, ExpiresAt: cutoff.Add(2 * time.Hour)}
			if err := replicas[i%len(replicas)].RotateRefreshToken(ctx, r); err != nil {
				t.Errorf("RotateRefreshToken(%s) during the purge: %v", id, err)
			}
		}
	})
	close(start)
	wg.Wait()

	total := 0
	for k := range replicas {
		if errs[k] != nil {
			t.Errorf("replica %d: DeleteExpiredSessions: %v", k, errs[k])
		}
		total += counts[k]
	}
	t.Logf("purged per replica: %v", counts)
	if total != expired {
		t.Errorf("the replicas purged %d sessions in all (%v), want %d", total, counts, expired)
	}
	if got := countRows(t, admin, schema, "sessions"); got != live {
		t.Errorf("%d sessions left, want %d", got, live)
	}
	if got := countRows(t, admin, schema, "refresh_tokens"); got != 3*live {
		t.Errorf("%d refresh tokens left, want %d (two seeded and one rotated per live session)", got, 3*live)
	}
}
