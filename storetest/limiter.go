package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// RunLimiter checks a latchkey.Limiter against its contract. open is
// called once per subtest and must return a limiter with no keys that
// reads the time from now, so that the suite can move its clock; a
// limiter whose clock cannot be injected (one that asks its server for the
// time) should skip.
func RunLimiter(t *testing.T, open func(t *testing.T, now func() time.Time) latchkey.Limiter) {
	tests := []struct {
		name string
		run  func(t *testing.T, l latchkey.Limiter, c *fakeClock)
	}{
		{"BurstThenDenied", testLimiterBurstThenDenied},
		{"DeniedSpendsNothing", testLimiterDeniedSpendsNothing},
		{"Refill", testLimiterRefill},
		{"KeysIndependent", testLimiterKeysIndependent},
		{"Reset", testLimiterReset},
		{"Refund", testLimiterRefund},
		{"ConcurrentTake", testLimiterConcurrentTake},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeClock{t: t0}
			tc.run(t, open(t, c.Now), c)
		})
	}
}

// fakeClock is a clock the suite moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// take calls l.Take and fails tb on error.
func take(tb testing.TB, l latchkey.Limiter, key string, rate latchkey.Rate) time.Duration {
	tb.Helper()
	wait, err := l.Take(tb.Context(), key, rate)
	if err != nil {
		tb.Fatalf("Take(%q): %v", key, err)
	}
	return wait
}

// mustSpendBurst takes rate.Burst attempts of key, all of which must be
// allowed, and checks that the next is denied.
func mustSpendBurst(tb testing.TB, l latchkey.Limiter, key string, rate latchkey.Rate) time.Duration {
	tb.Helper()
	for i := range rate.Burst {
		if wait := take(tb, l, key, rate); wait != 0 {
			tb.Fatalf("Take(%q) #%d of burst %d = %v, want allowed", key, i+1, rate.Burst, wait)
		}
	}
	wait := take(tb, l, key, rate)
	if wait <= 0 || wait > rate.Every {
		tb.Fatalf("Take(%q) after burst %d = %v, want denied with 0 < retryAfter ≤ %v", key, rate.Burst, wait, rate.Every)
	}
	return wait
}

var limiterRates = []struct {
	name string
	rate latchkey.Rate
}{
	{"burst 1", latchkey.Rate{Burst: 1, Every: time.Second}},
	{"burst 5 every 100ms", latchkey.Rate{Burst: 5, Every: 100 * time.Millisecond}},
	{"burst 10 every minute", latchkey.Rate{Burst: 10, Every: time.Minute}},
}

func testLimiterBurstThenDenied(t *testing.T, l latchkey.Limiter, _ *fakeClock) {
	for _, tc := range limiterRates {
		t.Run(tc.name, func(t *testing.T) {
			mustSpendBurst(t, l, "key "+tc.name, tc.rate)
		})
	}
}

func testLimiterDeniedSpendsNothing(t *testing.T, l latchkey.Limiter, c *fakeClock) {
	rate := latchkey.Rate{Burst: 3, Every: time.Second}
	wait := mustSpendBurst(t, l, "k", rate)
	// Hammering while denied must not push the next allowed attempt back.
	for range 10 {
		if w := take(t, l, "k", rate); w != wait {
			t.Fatalf("repeated denied Take = %v, want %v again", w, wait)
		}
	}
	// retryAfter is accurate: just before it, still denied; at it, allowed.
	c.Advance(wait - time.Millisecond)
	if w := take(t, l, "k", rate); w <= 0 {
		t.Errorf("Take 1ms before retryAfter allowed")
	}
	c.Advance(time.Millisecond)
	if w := take(t, l, "k", rate); w != 0 {
		t.Errorf("Take at retryAfter = %v, want allowed", w)
	}
}

func testLimiterRefill(t *testing.T, l latchkey.Limiter, c *fakeClock) {
	rate := latchkey.Rate{Burst: 3, Every: time.Second}
	mustSpendBurst(t, l, "k", rate)

	// One Every refills one attempt.
	c.Advance(rate.Every)
	if w := take(t, l, "k", rate); w != 0 {
		t.Fatalf("Take after Every = %v, want allowed", w)
	}
	if w := take(t, l, "k", rate); w <= 0 {
		t.Fatalf("second Take after Every allowed; want one attempt refilled")
	}

	// Burst × Every refills the whole burst, and no more.
	c.Advance(10 * time.Duration(rate.Burst) * rate.Every)
	mustSpendBurst(t, l, "k", rate)
}

func testLimiterKeysIndependent(t *testing.T, l latchkey.Limiter, _ *fakeClock) {
	rate := latchkey.Rate{Burst: 2, Every: time.Minute}
	mustSpendBurst(t, l, "user:alice", rate)
	mustSpendBurst(t, l, "user:bob", rate)
	mustSpendBurst(t, l, "ip:192.0.2.1", rate)
}

func testLimiterReset(t *testing.T, l latchkey.Limiter, _ *fakeClock) {
	ctx := t.Context()
	rate := latchkey.Rate{Burst: 3, Every: time.Hour}
	mustSpendBurst(t, l, "a", rate)
	mustSpendBurst(t, l, "b", rate)
	if err := l.Reset(ctx, "a"); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	mustSpendBurst(t, l, "a", rate) // the full burst again
	if w := take(t, l, "b", rate); w <= 0 {
		t.Errorf("Reset(a) restored b")
	}
	if err := l.Reset(ctx, "never seen"); err != nil {
		t.Errorf("Reset(unknown key): %v", err)
	}
}

func testLimiterRefund(t *testing.T, l latchkey.Limiter, c *fakeClock) {
	ctx := t.Context()
	rate := latchkey.Rate{Burst: 3, Every: time.Hour}
	mustSpendBurst(t, l, "a", rate)
	if err := l.Refund(ctx, "a", rate); err != nil {
		t.Fatalf("Refund: %v", err)
	}
	// One attempt back, exactly one.
	if w := take(t, l, "a", rate); w != 0 {
		t.Fatalf("Take after Refund = %v, want allowed", w)
	}
	if w := take(t, l, "a", rate); w <= 0 {
		t.Fatalf("second Take after one Refund allowed")
	}
	// Refunds never raise the allowance past a full burst.
	for range 5 {
		if err := l.Refund(ctx, "b", rate); err != nil {
			t.Fatalf("Refund(unused key): %v", err)
		}
	}
	mustSpendBurst(t, l, "b", rate)
	// A take refunded at once leaves the allowance as it was: a successful
	// login costs nothing.
	c.Advance(10 * time.Hour)
	for range 10 {
		if w := take(t, l, "c", rate); w != 0 {
			t.Fatalf("take/refund cycle denied: %v", w)
		}
		if err := l.Refund(ctx, "c", rate); err != nil {
			t.Fatal(err)
		}
	}
	mustSpendBurst(t, l, "c", rate)
}

func testLimiterConcurrentTake(t *testing.T, l latchkey.Limiter, _ *fakeClock) {
	const goroutines = 50
	tests := []struct {
		name  string
		burst int
	}{
		{"burst 1", 1},
		{"burst 10", 10},
		{"burst above callers", goroutines + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rate := latchkey.Rate{Burst: tc.burst, Every: time.Hour}
			key := fmt.Sprintf("concurrent %d", tc.burst)
			var allowed atomic.Int32
			start := make(chan struct{})
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					<-start
					wait, err := l.Take(t.Context(), key, rate)
					if err != nil {
						t.Errorf("Take: %v", err)
					}
					if wait == 0 && err == nil {
						allowed.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			if got, want := int(allowed.Load()), min(tc.burst, goroutines); got != want {
				t.Errorf("%d concurrent Takes with burst %d: %d allowed, want %d", goroutines, tc.burst, got, want)
			}
		})
	}
}
