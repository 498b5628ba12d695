package latchkey

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPasswordGateBoundsConcurrency(t *testing.T) {
	const slots = 2
	g := newPasswordGate(slots, 100)
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
	g := newPasswordGate(1, 1)
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
	g := newPasswordGate(1, 5)
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
