package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/storetest"
)

// TestLimiter runs the Limiter suite on Redis, with the suite's clock
// passed to the script (see "Time" in the package doc).
func TestLimiter(t *testing.T) {
	url := testURL(t)
	storetest.RunLimiter(t, func(t *testing.T, now func() time.Time) latchkey.Limiter {
		// A generous timeout: this checks the algorithm, and a slow
		// moment of a shared machine must not send a call to the fallback.
		l, _ := newTestLimiter(t, Config{URL: url, Prefix: newTestPrefix(t, url), Now: now, Timeout: 10 * time.Second}, false)
		return l
	})
}

// TestServerClock checks the production path, where the script reads
// Redis's clock, with rates short enough to wait for: burst, denial with
// an accurate wait, refill, and keys that leave Redis when their window
// has passed.
func TestServerClock(t *testing.T) {
	url := testURL(t)
	prefix := newTestPrefix(t, url)
	l, _ := newTestLimiter(t, Config{URL: url, Prefix: prefix, Timeout: 10 * time.Second}, false)
	c := newTestClient(t, url)
	ctx := t.Context()
	rate := latchkey.Rate{Burst: 2, Every: 300 * time.Millisecond}
	const key = "login:user:alice"

	for i := range rate.Burst {
		if w := mustTake(t, l, key, rate); w != 0 {
			t.Fatalf("Take #%d = %v, want allowed", i+1, w)
		}
	}
	wait := mustTake(t, l, key, rate)
	if wait <= 0 || wait > rate.Every {
		t.Fatalf("Take after burst = %v, want 0 < wait ≤ %v", wait, rate.Every)
	}

	// One key, stored hashed, that expires when the allowance is full.
	keys, err := c.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != l.key(key) || strings.Contains(keys[0], "alice") {
		t.Fatalf("keys under the prefix = %q, want one, %q, hashed", keys, l.key(key))
	}
	ttl, err := c.PTTL(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if full := time.Duration(rate.Burst) * rate.Every; ttl <= 0 || ttl > full {
		t.Fatalf("TTL = %v, want 0 < TTL ≤ %v (the time until the allowance is full)", ttl, full)
	}

	time.Sleep(wait)
	if w := mustTake(t, l, key, rate); w != 0 {
		t.Fatalf("Take after the wait it was told = %v, want allowed", w)
	}
	time.Sleep(time.Duration(rate.Burst)*rate.Every + 50*time.Millisecond)
	if n, err := c.Exists(ctx, l.key(key)).Result(); err != nil || n != 0 {
		t.Fatalf("key still in Redis after its window (exists %d, %v)", n, err)
	}

	// A refund that makes the allowance full removes the key at once.
	mustTake(t, l, key, rate)
	if err := l.Refund(ctx, key, rate); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, l.key(key)).Result(); err != nil || n != 0 {
		t.Fatalf("key still in Redis after a refund to a full allowance (exists %d, %v)", n, err)
	}
}

// TestReplicasShareOneLimit is the reason for this package: three
// limiters, as three replicas with their own connections, count one
// allowance. Ten wrong passwords spread round-robin over them are ten.
func TestReplicasShareOneLimit(t *testing.T) {
	url := testURL(t)
	prefix := newTestPrefix(t, url)
	var replicas []*Limiter
	for range 3 {
		l, _ := newTestLimiter(t, Config{URL: url, Prefix: prefix, Timeout: 10 * time.Second}, false)
		replicas = append(replicas, l)
	}
	rate := latchkey.Rate{Burst: 10, Every: time.Minute}
	const key = "login:user:bob"

	for i := range rate.Burst {
		if w := mustTake(t, replicas[i%3], key, rate); w != 0 {
			t.Fatalf("attempt %d on replica %d = %v, want allowed", i+1, i%3, w)
		}
	}
	for i, l := range replicas {
		if w := mustTake(t, l, key, rate); w <= 0 || w > rate.Every {
			t.Errorf("attempt %d on replica %d = %v, want denied with 0 < wait ≤ %v", rate.Burst+1, i, w, rate.Every)
		}
	}
	// Another key is another allowance, on every replica.
	if w := mustTake(t, replicas[1], "login:user:carol", rate); w != 0 {
		t.Errorf("another key denied: %v", w)
	}
	// A refund on one replica and a reset on another are seen by all.
	if err := replicas[2].Refund(t.Context(), key, rate); err != nil {
		t.Fatal(err)
	}
	if w := mustTake(t, replicas[0], key, rate); w != 0 {
		t.Errorf("Take on replica 0 after a refund on replica 2 = %v, want allowed", w)
	}
	if err := replicas[1].Reset(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	for i := range rate.Burst {
		if w := mustTake(t, replicas[(i+2)%3], key, rate); w != 0 {
			t.Fatalf("attempt %d after a reset on replica 1 = %v, want allowed", i+1, w)
		}
	}
}

// TestConcurrentTakesAcrossReplicas checks that the script is atomic:
// 50 takes at once, spread over three replicas, from a burst of 10 allow
// exactly 10. A read-then-write counter lets several through at once.
func TestConcurrentTakesAcrossReplicas(t *testing.T) {
	url := testURL(t)
	prefix := newTestPrefix(t, url)
	var replicas []*Limiter
	for range 3 {
		l, _ := newTestLimiter(t, Config{URL: url, Prefix: prefix, Timeout: 10 * time.Second}, false)
		replicas = append(replicas, l)
	}
	const goroutines = 50
	rate := latchkey.Rate{Burst: 10, Every: time.Hour}
	for round := range 5 {
		key := fmt.Sprintf("login:user:race%d", round)
		var allowed atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Go(func() {
				<-start
				w, err := replicas[i%3].Take(t.Context(), key, rate)
				if err != nil {
					t.Errorf("Take: %v", err)
					return
				}
				if w == 0 {
					allowed.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := int(allowed.Load()); got != rate.Burst {
			t.Errorf("round %d: %d concurrent takes over 3 replicas with burst %d: %d allowed", round, goroutines, rate.Burst, got)
		}
	}
}

// TestRedisGoesAway kills a private redis-server under a Limiter: logins
// keep being limited, by the fallback, with one warning; calls made while
// Redis is down do not wait for it; when Redis returns, one info line, and
// the counts are shared again.
func TestRedisGoesAway(t *testing.T) {
	srv := newRedisServer(t)
	logs := &logRecorder{}
	const retry = time.Second
	l, hook := newTestLimiter(t, Config{
		URL:           srv.url(),
		Timeout:       200 * time.Millisecond,
		RetryInterval: retry,
		Logger:        slog.New(logs),
	}, true)
	rate := latchkey.Rate{Burst: 10, Every: time.Minute}
	const key = "login:user:mallory"

	for range 4 {
		if w := mustTake(t, l, key, rate); w != 0 {
			t.Fatalf("Take with Redis up = %v, want allowed", w)
		}
	}
	if keys := srv.keys(DefaultPrefix); len(keys) != 1 {
		t.Fatalf("Redis holds %q, want the one key taken from", keys)
	}

	srv.kill()
	sentBefore := hook.sent.Load()
	began := time.Now()
	allowed := 0
	for range 30 {
		w := mustTake(t, l, key, rate)
		if w == 0 {
			allowed++
		}
	}
	elapsed := time.Since(began)
	// The fallback knows nothing of the four taken from Redis: it limits
	// at a fresh burst.
	if allowed != rate.Burst {
		t.Errorf("with Redis down, %d of 30 takes allowed, want the fallback's burst of %d", allowed, rate.Burst)
	}
	// One call finds Redis gone; after it, only a probe per interval
	// (one command each) may reach for it.
	if sent, most := hook.sent.Load()-sentBefore, 1+int64(elapsed/retry)+1; sent > most {
		t.Errorf("with Redis down, %d commands sent during %v of takes, want at most %d", sent, elapsed, most)
	}
	if n := logs.count(slog.LevelWarn); n != 1 {
		t.Errorf("%d warnings after Redis went away, want 1:\n%s", n, logs)
	}

	srv.start() // empty: it saves nothing
	deadline := time.Now().Add(10 * retry)
	for logs.count(slog.LevelInfo) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Redis not used again %v after it returned:\n%s", 10*retry, logs)
		}
		mustTake(t, l, "login:ip:192.0.2.7", rate) // a login arriving
		time.Sleep(20 * time.Millisecond)
	}
	if w := mustTake(t, l, key, rate); w != 0 {
		t.Fatalf("Take after Redis returned = %v, want allowed (the new server has a full allowance)", w)
	}
	if keys := srv.keys(DefaultPrefix); !slices.Contains(keys, l.key(key)) {
		t.Errorf("after recovery Redis holds %q, want %q among them: the limiter is not using Redis", keys, l.key(key))
	}
	if w, i := logs.count(slog.LevelWarn), logs.count(slog.LevelInfo); w != 1 || i != 1 {
		t.Errorf("after one outage: %d warnings and %d info lines, want 1 and 1:\n%s", w, i, logs)
	}
	if s := logs.String(); strings.Contains(s, "mallory") || strings.Contains(s, "192.0.2.7") {
		t.Errorf("the log names a user or an address:\n%s", s)
	}
}

// TestRedisHangs stops a private redis-server (it accepts and never
// answers, as a blocked or partitioned server does): the call that meets
// it ends after Timeout, not after go-redis's read timeout of seconds, and
// later calls do not try again.
func TestRedisHangs(t *testing.T) {
	srv := newRedisServer(t)
	logs := &logRecorder{}
	const timeout = 100 * time.Millisecond
	l, hook := newTestLimiter(t, Config{
		URL:           srv.url(),
		Timeout:       timeout,
		RetryInterval: time.Hour,
		Logger:        slog.New(logs),
	}, true)
	rate := latchkey.Rate{Burst: 10, Every: time.Minute}
	mustTake(t, l, "k", rate) // a connection in the pool

	srv.signal(syscall.SIGSTOP)
	began := time.Now()
	if w := mustTake(t, l, "k", rate); w != 0 {
		t.Fatalf("Take on a hung Redis = %v, want allowed by the fallback", w)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Take on a hung Redis took %v, want about the Timeout of %v", took, timeout)
	}
	sent := hook.sent.Load()
	for range 20 {
		mustTake(t, l, "k", rate)
	}
	if n := hook.sent.Load() - sent; n != 0 {
		t.Errorf("%d commands sent after Redis was found hung, want none before RetryInterval", n)
	}
	if n := logs.count(slog.LevelWarn); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
}

// TestCallerContextEnds: a login whose request is gone gets its context's
// error, and Redis is not taken for down because of it.
func TestCallerContextEnds(t *testing.T) {
	url := testURL(t)
	logs := &logRecorder{}
	l, _ := newTestLimiter(t, Config{URL: url, Prefix: newTestPrefix(t, url), Logger: slog.New(logs), Timeout: 10 * time.Second}, true)
	rate := latchkey.Rate{Burst: 1, Every: time.Minute}
	mustTake(t, l, "k", rate) // the script loaded, a connection ready

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Take(ctx, "k", rate); !errors.Is(err, context.Canceled) {
		t.Errorf("Take with a canceled context: err = %v, want context.Canceled", err)
	}
	if err := l.Refund(ctx, "k", rate); !errors.Is(err, context.Canceled) {
		t.Errorf("Refund with a canceled context: err = %v, want context.Canceled", err)
	}
	if err := l.Reset(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Reset with a canceled context: err = %v, want context.Canceled", err)
	}
	if s := l.state.Load(); s != 0 || logs.count(slog.LevelWarn) != 0 {
		t.Errorf("a canceled caller switched the limiter to its fallback (state %d):\n%s", s, logs)
	}
	// Redis still counts: the one attempt of the burst is spent.
	if w := mustTake(t, l, "k", rate); w <= 0 {
		t.Errorf("Take after the canceled calls = %v, want denied", w)
	}
}

func TestPing(t *testing.T) {
	url := testURL(t)
	l, _ := newTestLimiter(t, Config{URL: url, Prefix: newTestPrefix(t, url), Timeout: 10 * time.Second}, false)
	if err := l.Ping(t.Context()); err != nil {
		t.Errorf("Ping on a live Redis: %v", err)
	}

	srv := newRedisServer(t)
	down, _ := newTestLimiter(t, Config{URL: srv.url()}, true)
	srv.kill()
	if err := down.Ping(t.Context()); err == nil {
		t.Errorf("Ping on a stopped Redis: no error")
	}
	if s := down.state.Load(); s != 0 {
		t.Errorf("Ping switched the limiter (state %d); it only reports", s)
	}
}

// TestNewRefuses needs no Redis: the configurations New refuses, and a bad
// URL's password kept out of the error.
func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"neither URL nor Client", Config{}, "required"},
		{"negative timeout", Config{URL: "redis://127.0.0.1:1", Timeout: -time.Second}, "negative"},
		{"negative retry", Config{URL: "redis://127.0.0.1:1", RetryInterval: -time.Second}, "negative"},
		{"unknown scheme", Config{URL: "http://127.0.0.1:6379"}, "scheme"},
		{"bad port, password in URL", Config{URL: "redis://u:s3cret-pw@127.0.0.1:notaport/0"}, "parse URL"},
		{"bad database", Config{URL: "redis://127.0.0.1:6379/x"}, "database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(tc.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("New accepted %+v", tc.cfg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

// TestRateRefused: a rate whose Every is not positive is an error, never
// an unlimited allowance; no Redis needed, since it is refused first.
func TestRateRefused(t *testing.T) {
	l, err := New(Config{URL: "redis://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, every := range []time.Duration{0, -time.Second} {
		rate := latchkey.Rate{Burst: 5, Every: every}
		if _, err := l.Take(t.Context(), "k", rate); err == nil {
			t.Errorf("Take with Every %v: no error", every)
		}
		if err := l.Refund(t.Context(), "k", rate); err == nil {
			t.Errorf("Refund with Every %v: no error", every)
		}
	}
	if s := l.state.Load(); s != 0 {
		t.Errorf("a refused rate reached Redis (state %d)", s)
	}
}

func mustTake(tb testing.TB, l latchkey.Limiter, key string, rate latchkey.Rate) time.Duration {
	tb.Helper()
	w, err := l.Take(tb.Context(), key, rate)
	if err != nil {
		tb.Fatalf("Take(%q): %v", key, err)
	}
	return w
}
