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
	// The last computation's argon2id memory is garbage by now. Collected
	// here, just before f allocates its own, its pages are one free run
	// that f's buffer takes, so memory holds one buffer per slot. Left to
	// the pacer (GOGC=100), the heap grows to twice what is live before a
	// collection, three buffers per slot at peak; and collected as soon as
	// the last computation ends, its run is split by small allocations
	// before the next one comes, which then takes fresh pages: two buffers
	// in RSS until the scavenger returns one. A collection costs a mark of
	// what is live besides the buffers (they hold no pointers), so it is
	// worth it only while the buffers are most of the heap; a server that
	// keeps more than that live is paced well enough by the runtime.
	// docs/benchmarks.md, "Server memory", has the numbers.
	if g.buffersDominate() {
		runtime.GC()
	}
	f()
	return nil
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
