package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgdb"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

// checkNotDomainError fails if err, from a broken connection, poses as an
// answer: nil, ErrNotFound or ErrConflict.
func checkNotDomainError(tb testing.TB, what string, err error) {
	tb.Helper()
	switch {
	case err == nil:
		tb.Errorf("%s succeeded on a broken connection", what)
	case errors.Is(err, latchkey.ErrNotFound), errors.Is(err, latchkey.ErrConflict):
		tb.Errorf("%s error = %v: a lost connection must not pass for an answer", what, err)
	}
}

// TestConnectionLostMidRotation ends the store's server sessions while a
// rotation waits for a row lock: the rotation fails with an error (and
// changes nothing), and the same Store rotates the token once the server
// takes connections again, without being reopened.
func TestConnectionLostMidRotation(t *testing.T) {
	base := pgdbtest.URL(t)
	app := pgdbtest.Name("latchkey_test_app_")
	schema := pgdbtest.Schema(t)
	s := mustOpen(t, Config{URL: pgdbtest.WithParams(t, base, "application_name", app), Schema: schema, MaxConns: 4})
	ctx := t.Context()
	if err := s.CreateUser(ctx, &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	h0, h1 := tokenHash("s1/0"), tokenHash("s1/1")
	if err := s.CreateSession(ctx, &latchkey.Session{ID: "s1", UserID: "u1", CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour), CurrentHash: h0}); err != nil {
		t.Fatal(err)
	}
	r := latchkey.Rotation{SessionID: "s1", OldHash: h0, NewHash: h1, SealedSuccessor: []byte("sealed"), At: t0.Add(time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}

	// Hold the session's row lock from another connection, so that the
	// rotation is in flight on the server when its connection dies.
	admin := pgdbtest.Admin(t, base)
	lock, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{schema, "sessions"}.Sanitize()+` WHERE id = 's1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.RotateRefreshToken(ctx, r) }()

	// The killer needs a connection of its own: admin is inside the lock's
	// transaction.
	killer := pgdbtest.Admin(t, base)
	err = pgdbtest.Eventually(10*time.Second, func() error {
		var waiting bool
		err := killer.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock')`, app).Scan(&waiting)
		if err == nil && !waiting {
			err = errors.New("the rotation is not waiting for the lock")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := pgdbtest.Terminate(t, killer, `application_name = $1`, app); n == 0 {
		t.Fatal("no server session of the store to terminate")
	}

	select {
	case err := <-done:
		checkNotDomainError(t, "RotateRefreshToken", err)
		t.Logf("rotation in flight: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("RotateRefreshToken still running 10s after its connection was terminated")
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Nothing half-written: the session still has h0, and h1 is not recorded.
	var current []byte
	var recorded bool
	err = killer.QueryRow(ctx, `SELECT current_hash, EXISTS (SELECT 1 FROM `+pgx.Identifier{schema, "refresh_tokens"}.Sanitize()+` WHERE hash = $1)
		FROM `+pgx.Identifier{schema, "sessions"}.Sanitize()+` WHERE id = 's1'`, h1).Scan(&current, &recorded)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(current, h0) || recorded {
		t.Fatalf("after the failed rotation: current is h0 %v, h1 recorded %v; want true, false", bytes.Equal(current, h0), recorded)
	}

	// The same Store recovers by itself. Connections the pool still holds
	// may fail a call each; a failure must never pass for an answer.
	var failures int
	err = pgdbtest.Eventually(10*time.Second, func() error {
		err := s.RotateRefreshToken(ctx, r)
		if err != nil {
			failures++
			checkNotDomainError(t, "RotateRefreshToken while recovering", err)
		}
		return err
	})
	if err != nil {
		t.Fatalf("the store did not recover within 10s: %v", err)
	}
	t.Logf("%d failed calls before the store recovered", failures)
	got, err := s.Session(ctx, "s1")
	if err != nil || !bytes.Equal(got.CurrentHash, h1) {
		t.Fatalf("after recovery, Session = %+v, %v; want CurrentHash h1", got, err)
	}
}

// TestDatabaseUnavailable: while the database refuses connections, Ping
// (the readiness check) and every call fail with an error; when it takes
// them again, the same Store works without being reopened.
func TestDatabaseUnavailable(t *testing.T) {
	name, url := pgdbtest.Database(t)
	s := mustOpen(t, Config{URL: url, MaxConns: 4})
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	pgdbtest.Terminate(t, admin, `datname = $1`, name)

	for i := range 3 {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := s.Ping(ctx)
		if err == nil {
			t.Errorf("Ping #%d succeeded while the database refuses connections", i)
		}
		_, err = s.UserByID(ctx, "u1")
		checkNotDomainError(t, fmt.Sprintf("UserByID #%d", i), err)
		cancel()
	}

	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	if err := pgdbtest.Eventually(10*time.Second, func() error { return s.Ping(ctx) }); err != nil {
		t.Fatalf("Ping after the database is back: %v", err)
	}
	if err := s.CreateUser(ctx, &latchkey.User{ID: "u1", Username: "alice", Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0}); err != nil {
		t.Fatalf("CreateUser after the database is back: %v", err)
	}
}

// TestReadOnlyDatabase: a database whose sessions start read-only is not
// ready, and once it is writable again the Store's connections opened
// while it was read-only leave the pool at once, instead of failing
// writes until they age out.
func TestReadOnlyDatabase(t *testing.T) {
	const maxConns = 4
	name, url := pgdbtest.Database(t)
	s := mustOpen(t, Config{URL: url, MaxConns: maxConns})
	ctx := t.Context()
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	user := func(i int) *latchkey.User {
		return &latchkey.User{ID: fmt.Sprint("u", i), Username: fmt.Sprint("user", i), Role: latchkey.RoleMember, PasswordHash: "h", CreatedAt: t0}
	}
	if err := s.CreateUser(ctx, user(0)); err != nil {
		t.Fatal(err)
	}

	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	pgdbtest.Terminate(t, admin, `datname = $1`, name) // new sessions start read-only

	err := pgdbtest.Eventually(10*time.Second, func() error {
		if err := s.Ping(ctx); !errors.Is(err, ErrReadOnly) {
			return fmt.Errorf("Ping error = %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateUser(ctx, user(1))
	checkNotDomainError(t, "CreateUser on a read-only database", err)
	if pgdb.SQLState(err) != pgdb.CodeReadOnlyTransaction {
		t.Errorf("CreateUser error = %v, want SQLSTATE %s", err, pgdb.CodeReadOnlyTransaction)
	}
	if _, err := s.UserByID(ctx, "u0"); err != nil {
		t.Errorf("UserByID on a read-only database: %v", err)
	}
	// Fill the pool with read-only connections: several reads at once.
	time.Sleep(time.Second) // pgdb drops connections at most once a second: let the next read-only write do it
	conns := make([]*pgxpool.Conn, 0, maxConns)
	for range maxConns {
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	if got := s.pool.Stat().TotalConns(); got != maxConns {
		t.Fatalf("pool holds %d connections, want %d", got, maxConns)
	}

	if _, err := admin.Exec(ctx, `ALTER DATABASE `+name+` RESET default_transaction_read_only`); err != nil {
		t.Fatal(err)
	}
	// No connection is terminated this time: the Store must let go of its
	// read-only ones by itself. The first write fails on one of them, and
	// makes the Store drop them all.
	i, failures := 2, 0
	err = pgdbtest.Eventually(5*time.Second, func() error {
		i++
		err := s.CreateUser(ctx, user(i))
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
		i++
		if err := s.CreateUser(ctx, user(i)); err != nil {
			t.Fatalf("a read-only connection stayed in the pool: CreateUser: %v", err)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping on a writable database: %v", err)
	}
}
