package latchkey_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// The benchmarks here put the password hash and the Service operations that
// pay for it side by side, so that in one run
//
//	go test -run '^$' -bench 'HashPassword|VerifyPassword|Login|Refresh' -benchmem .
//
// BenchmarkLogin / BenchmarkHashPassword is the login overhead over its
// argon2id (target: at most 1.1), and BenchmarkRefresh is the rotation cost
// on a file-backed SQLite store (WAL, synchronous=FULL, as in production).

const benchPassword = "password123member"

// BenchmarkHashPassword is one argon2id hash with the production
// parameters, salt generation and PHC encoding included.
func BenchmarkHashPassword(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		latchkey.HashPassword(benchPassword, latchkey.DefaultArgon2)
	}
}

// BenchmarkVerifyPassword is the check Login actually runs: parse the
// stored PHC string and recompute argon2id.
func BenchmarkVerifyPassword(b *testing.B) {
	h := latchkey.HashPassword(benchPassword, latchkey.DefaultArgon2)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := latchkey.VerifyPassword(h, benchPassword, latchkey.DefaultArgon2); !ok || err != nil {
			b.Fatal("password does not verify", err)
		}
	}
}

// benchService is a Service over a SQLite file in a temporary directory
// (WAL, synchronous=FULL, as in production), signing ES256 on the wall
// clock, with one member user whose password is benchPassword.
func benchService(b *testing.B, argon latchkey.Argon2Params) *latchkey.Service {
	b.Helper()
	e := latchkeytest.New(b, latchkeytest.Options{RealTime: true, Config: func(c *latchkey.Config) {
		c.Argon2 = argon
		c.ReuseGrace = latchkey.DefaultReuseGrace
	}})
	e.MustUser(b, "anna", benchPassword, latchkey.RoleMember)
	return e.Service
}

// BenchmarkLogin is Service.Login end to end with DefaultArgon2: limiter,
// user lookup, argon2id verification, session insert (a committed SQLite
// write) and ES256 signing. No client address, so the per-address limiter
// is not involved; a correct password resets the per-user one.
func BenchmarkLogin(b *testing.B) {
	svc := benchService(b, latchkey.DefaultArgon2)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.Login(ctx, "anna", benchPassword, latchkey.Client{UserAgent: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefresh rotates one session's chain: each iteration presents the
// token the previous one returned (lookup, user read, atomic rotation
// committed to the SQLite file, ES256 signing).
func BenchmarkRefresh(b *testing.B) {
	svc := benchService(b, latchkeytest.FastArgon2) // Refresh never hashes a password
	ctx := context.Background()
	pair, err := svc.Login(ctx, "anna", benchPassword, latchkey.Client{})
	if err != nil {
		b.Fatal(err)
	}
	refresh := pair.RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		p, err := svc.Refresh(ctx, refresh, latchkey.Client{UserAgent: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		refresh = p.RefreshToken
	}
}

// BenchmarkRefreshParallel is many sessions rotating at once, each
// goroutine on its own chain, as under real traffic: SQLite serialises the
// writes, the rest runs in parallel.
func BenchmarkRefreshParallel(b *testing.B) {
	svc := benchService(b, latchkeytest.FastArgon2) // Refresh never hashes a password
	ctx := context.Background()
	n := 4 * runtime.GOMAXPROCS(0) * 8 // more sessions than RunParallel's goroutines
	chains := make([]string, n)
	for i := range chains {
		pair, err := svc.Login(ctx, "anna", benchPassword, latchkey.Client{})
		if err != nil {
			b.Fatal(err)
		}
		chains[i] = pair.RefreshToken
	}
	var next atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1)-1) % n
		refresh := chains[i]
		for pb.Next() {
			p, err := svc.Refresh(ctx, refresh, latchkey.Client{})
			if err != nil {
				b.Error(err)
				return
			}
			refresh = p.RefreshToken
		}
		// RunParallel runs again with a larger b.N: the next round's
		// goroutine on this chain continues from its newest token.
		chains[i] = refresh
	})
}

// BenchmarkAuditRecord is what a login pays for its audit event: the log
// line (here to a discarding text handler, so formatting is counted) and
// the append to the queue; the database write happens in Run, off the
// request path. Compare with BenchmarkLogin in the same run.
func BenchmarkAuditRecord(b *testing.B) {
	e := latchkeytest.New(b, latchkeytest.Options{RealTime: true})
	a := latchkey.NewAuditLog(e.Store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Record(ctx, latchkey.AuditEvent{Type: latchkey.AuditLoginSucceeded, UserID: "0190d6a0-0000-7000-8000-000000000001",
			SessionID: "0190d6a0-0000-7000-8000-000000000002", IP: "192.0.2.1", UserAgent: "bench"})
		if i++; i%400 == 0 {
			// As Run would, off the request path: not timed.
			b.StopTimer()
			if err := a.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
}
