package redis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// BenchmarkTake measures a Take on Redis (one script run on Redis's clock,
// the production path) against the ceiling, a bare PING round trip on the
// same pool with the same deadline, and against the in-process limiter, alone and behind a
// Limiter whose Redis is down (the cost of a login during an outage).
// Every take is allowed, so each Redis take writes its key.
//
//	LATCHKEY_TEST_REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench Take -benchtime 2s ./redis/
func BenchmarkTake(b *testing.B) {
	url := testURL(b)
	// Never denied: the tolerance is a second, far above what one key
	// of 1024 gets of b.N takes in a second.
	rate := latchkey.Rate{Burst: 1 << 20, Every: time.Microsecond}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("login:user:bench%d", i)
	}

	// Not newTestLimiter's check that the script ran: -bench may select
	// only the cases that do not take from Redis.
	shared, _ := newTestLimiter(b, Config{URL: url, Prefix: newTestPrefix(b, url), Timeout: 10 * time.Second}, true)
	b.Cleanup(func() {
		if s := shared.state.Load(); s != 0 {
			b.Errorf("the Redis limiter switched to its fallback (state %d): its figures are not Redis's", s)
		}
	})
	mem := latchkey.NewMemoryLimiter()
	down, _ := newTestLimiter(b, Config{URL: "redis://127.0.0.1:1", RetryInterval: time.Hour}, true)
	down.markDown(0, fmt.Errorf("benchmark: Redis taken for down"))

	take := func(l latchkey.Limiter) func(context.Context, int) error {
		return func(ctx context.Context, i int) error {
			w, err := l.Take(ctx, keys[i%len(keys)], rate)
			if err == nil && w != 0 {
				err = fmt.Errorf("take denied (%v): the benchmark measures allowed takes", w)
			}
			return err
		}
	}
	cases := []struct {
		name string
		op   func(context.Context, int) error
	}{
		{"memory", take(mem)},
		{"fallback", take(down)},
		{"redis", take(shared)},
		{"ping", func(ctx context.Context, _ int) error {
			// With the deadline a Take's call has, which costs two
			// SetDeadline calls per round trip.
			ctx, cancel := context.WithTimeout(ctx, shared.timeout)
			defer cancel()
			return shared.client.Ping(ctx).Err()
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := b.Context()
			i := 0
			for b.Loop() {
				if err := c.op(ctx, i); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			ctx := b.Context()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if err := c.op(ctx, i); err != nil {
						b.Error(err)
						return
					}
					i += 7 // spread goroutines over different keys
				}
			})
		})
	}
}
