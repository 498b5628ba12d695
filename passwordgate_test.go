package latchkey

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPasswordGateBoundsConcurrency(t *testing.T) {
	const slots = 2
	g := newPasswordGate(slots, 100, 0)
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			err := g.do(t.Context(), func() {
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(2 * time.Millisecond)
				running.Add(-1)
			})
			if err != nil {
				t.Errorf("do: %v", err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p < 1 || p > slots {
		t.Errorf("%d ran at once, want between 1 and %d", p, slots)
	}
	if w := g.waiting.Load(); w != 0 {
		t.Errorf("waiting = %d after all finished, want 0", w)
	}
}

func TestPasswordGateQueueFull(t *testing.T) {
	g := newPasswordGate(1, 1, 0)
	hold := make(chan struct{})
	started := make(chan struct{})
	go g.do(context.Background(), func() { close(started); <-hold })
	<-started

	// One may wait; it gets the slot when the holder leaves.
	waited := make(chan error)
	go func() { waited <- g.do(context.Background(), func() {}) }()
	for g.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	// The next finds the queue full, without waiting and without running f.
	ran := false
	if err := g.do(context.Background(), func() { ran = true }); !errors.Is(err, ErrBusy) || ran {
		t.Errorf("do with a full queue = %v (ran %v), want ErrBusy without running", err, ran)
	}
	close(hold)
	if err := <-waited; err != nil {
		t.Errorf("queued do = %v, want nil", err)
	}
	if w := g.waiting.Load(); w != 0 {
		t.Errorf("waiting = %d, want 0", w)
	}
}

func TestPasswordGateContextEnds(t *testing.T) {
	g := newPasswordGate(1, 5, 0)
	g.slots <- struct{}{} // taken
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	ran := false
	if err := g.do(ctx, func() { ran = true }); !errors.Is(err, context.DeadlineExceeded) || ran {
		t.Errorf("do = %v (ran %v), want DeadlineExceeded without running", err, ran)
	}
	if w := g.waiting.Load(); w != 0 {
		t.Errorf("waiting = %d after giving up, want 0", w)
	}
}

// sink keeps a test's allocation on the heap.
var sink []byte

// TestPasswordGateFreesEachComputationsMemory: a computation runs on a
// heap without the last one's memory, collected before it starts, so that
// it reuses those pages instead of the heap holding several hashes' worth
// of garbage.
func TestPasswordGateFreesEachComputationsMemory(t *testing.T) {
	const size = 32 << 20 // more than one default argon2id buffer
	g := newPasswordGate(1, 1, size)
	runtime.GC()
	var before, during runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := g.do(t.Context(), func() {
		sink = make([]byte, size)
		sink[size-1] = 1
		sink = nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := g.do(t.Context(), func() { runtime.ReadMemStats(&during) }); err != nil {
		t.Fatal(err)
	}
	if grown := int64(during.HeapAlloc) - int64(before.HeapAlloc); grown > size/2 {
		t.Errorf("the next computation starts on a heap %d MiB bigger, want the last one's %d MiB freed", grown>>20, size>>20)
	}
}

// TestPasswordGateLeavesABigHeapToThePacer: when what is live dwarfs the
// computations' buffers, a collection per computation would cost a mark
// of all of it for little memory back, and the gate runs none.
func TestPasswordGateLeavesABigHeapToThePacer(t *testing.T) {
	live := make([]*[1 << 10]byte, 64<<10) // 64 MiB live, with pointers
	for i := range live {
		live[i] = new([1 << 10]byte)
	}
	runtime.GC()
	g := newPasswordGate(1, 1, 1<<20) // 1 MiB buffers
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := g.do(t.Context(), func() {}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if n := after.NumGC - before.NumGC; n != 0 {
		t.Errorf("%d collections after one computation over a 64 MiB heap, want 0", n)
	}
	runtime.KeepAlive(live)
}
