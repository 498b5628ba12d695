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

// bigComputation allocates and drops more than one default argon2id
// buffer, as a hash does.
const bigComputation = 32 << 20

func allocateAndDrop() {
	sink = make([]byte, bigComputation)
	sink[bigComputation-1] = 1
	sink = nil
}

// heapGrowth is how much more the heap holds now than at base.
func heapGrowth(base runtime.MemStats) int64 {
	var now runtime.MemStats
	runtime.ReadMemStats(&now)
	return int64(now.HeapAlloc) - int64(base.HeapAlloc)
}

// TestPasswordGateFreesMemoryWhenIdle: with nobody waiting, a
// computation's memory is collected before do returns, so that it neither
// stays in the heap nor swells the collector's goal for what comes next.
func TestPasswordGateFreesMemoryWhenIdle(t *testing.T) {
	g := newPasswordGate(1, 1, bigComputation)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	if err := g.do(t.Context(), allocateAndDrop); err != nil {
		t.Fatal(err)
	}
	if grown := heapGrowth(base); grown > bigComputation/2 {
		t.Errorf("the heap holds %d MiB more after do, want the computation's %d MiB freed", grown>>20, bigComputation>>20)
	}
}

// TestPasswordGateFreesMemoryBeforeTheNext: with a computation waiting,
// the one ending leaves its memory for the waiter to collect just before
// it starts, and the waiter starts on a heap without it.
func TestPasswordGateFreesMemoryBeforeTheNext(t *testing.T) {
	g := newPasswordGate(1, 1, bigComputation)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- g.do(t.Context(), func() { <-release; allocateAndDrop() })
	}()
	for len(g.slots) == 0 {
		runtime.Gosched()
	}
	var after, during int64
	second := make(chan error, 1)
	go func() {
		second <- g.do(t.Context(), func() { during = heapGrowth(base) })
	}()
	for g.waiting.Load() == 0 {
		runtime.Gosched()
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	after = heapGrowth(base)
	if during > bigComputation/2 {
		t.Errorf("the waiting computation starts on a heap %d MiB bigger, want the last one's %d MiB freed", during>>20, bigComputation>>20)
	}
	if after > bigComputation/2 {
		t.Errorf("the heap holds %d MiB more after both, want %d MiB freed", after>>20, bigComputation>>20)
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
