package latchkey

import (
	"context"
	"runtime"
	"sync/atomic"
)

// passwordGate bounds the argon2id computations running at once, and the
// requests waiting for one. Each computation holds Argon2Params.Memory
// (19 MiB by default) for its whole run, so without a bound a burst of
// logins, from however many addresses, can take the process's memory;
// and running more at once than there are CPUs only makes each slower.
type passwordGate struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
}

func newPasswordGate(concurrency, queue int) *passwordGate {
	return &passwordGate{slots: make(chan struct{}, concurrency), maxWaiting: int64(queue)}
}

// do runs f in a slot. It waits for a slot while fewer than the queue's
// length wait, and gives up with ErrBusy otherwise, or with ctx's error.
func (g *passwordGate) do(ctx context.Context, f func()) error {
	select {
	case g.slots <- struct{}{}:
	default:
		if g.waiting.Add(1) > g.maxWaiting {
			g.waiting.Add(-1)
			return ErrBusy
		}
		select {
		case g.slots <- struct{}{}:
			g.waiting.Add(-1)
		case <-ctx.Done():
			g.waiting.Add(-1)
			return ctx.Err()
		}
	}
	defer func() { <-g.slots }()
	f()
	// f's argon2id memory is garbage now. Collected before the slot is
	// free, it is what the next hash allocates, so memory holds one
	// buffer per slot; left to the pacer (GOGC=100), the heap grows to
	// twice what is live before a collection, three buffers per slot at
	// peak, 58 MiB on one core, and the RSS stays there. The collection
	// costs about as much as marking the small, pointer-bearing rest of
	// the heap (the buffers hold no pointers): docs/benchmarks.md,
	// "Server memory", has the measured price.
	runtime.GC()
	return nil
}
