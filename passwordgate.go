package latchkey

import (
	"context"
	"runtime"
	"runtime/metrics"
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
	// hashBytes is the memory one computation allocates (Argon2Params.
	// Memory in bytes), which decides when collecting after it pays.
	hashBytes uint64
	// uncollected is set when a computation ended while others waited,
	// so that its memory is still garbage on the heap.
	uncollected atomic.Bool
}

func newPasswordGate(concurrency, queue int, hashBytes uint64) *passwordGate {
	return &passwordGate{slots: make(chan struct{}, concurrency), maxWaiting: int64(queue), hashBytes: hashBytes}
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
	// Each computation's argon2id memory is garbage when it ends, and when
	// it is collected decides the process's memory (docs/benchmarks.md,
	// "Server memory", has the numbers):
	//
	//   - Left to the pacer (GOGC=100), the heap grows to twice what is live
	//     before a collection: three buffers per slot at peak. And a
	//     collection the pacer runs during a computation counts its buffer
	//     as live, so until the next one the heap may grow by another
	//     buffer's worth of any garbage, a refresh load's say.
	//   - With computations queued, the next one starts at once. Collected
	//     right before it allocates, the last buffer's pages are one free
	//     run, which the new buffer takes. Collected as soon as the last
	//     one ended, that run is split by the small allocations of the
	//     requests served in between, and the new buffer takes fresh
	//     pages: two buffers in RSS until the scavenger returns one.
	//   - With none queued, collecting at once frees the buffer and sets
	//     the pacer's goal by what is really live.
	//
	// A collection costs a mark of what is live besides the buffers (they
	// hold no pointers), so it is worth it only while the buffers are most
	// of the heap; a server that keeps more than that live is paced well
	// enough by the runtime.
	if g.uncollected.Swap(false) && g.buffersDominate() {
		runtime.GC()
	}
	f()
	if g.waiting.Load() > 0 {
		g.uncollected.Store(true)
	} else if g.buffersDominate() {
		runtime.GC()
		g.uncollected.Store(false) // another slot's garbage went too
	}
	return nil
}

// full reports whether do would turn a caller away now: every slot busy
// and the queue full. Asked before work that only a slot makes useful (a
// login's user lookup), it lets a flood beyond the queue be refused
// without that work. It is a snapshot: a caller it lets through may still
// be refused by do, after the work, and one it refuses may have found a
// place freed an instant later, as it would have by arriving an instant
// earlier; either way the answer is one do gives.
func (g *passwordGate) full() bool {
	return len(g.slots) == cap(g.slots) && g.waiting.Load() >= g.maxWaiting
}

// buffersDominate reports whether the heap the last collection found live
// is under twice the buffers of every slot.
func (g *passwordGate) buffersDominate() bool {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return false
	}
	return sample[0].Value.Uint64() < 2*uint64(cap(g.slots))*g.hashBytes
}
