package books

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedReads is a version count whose reads each block until released,
// and return the count as it was when the read began, as a database
// statement sees the snapshot taken at its start.
type gatedReads struct {
	count   atomic.Int64
	started chan int64 // the value each read began with
	release chan struct{}
	reads   atomic.Int64
}

func newGatedReads() *gatedReads {
	return &gatedReads{started: make(chan int64, 16), release: make(chan struct{})}
}

func (g *gatedReads) read(ctx context.Context) (int64, error) {
	g.reads.Add(1)
	v := g.count.Load()
	g.started <- v
	select {
	case <-g.release:
		return v, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// waitWaiters waits until n callers wait for the next shared read.
func waitWaiters(t *testing.T, r *versionReader, n int) {
	t.Helper()
	waitRound(t, r, "the next read", func() *versionRound { return r.next }, n)
}

// waitOpen waits until the leader of a round yields (r.yield) with n
// callers joined.
func waitOpen(t *testing.T, r *versionReader, n int) {
	t.Helper()
	waitRound(t, r, "the open round", func() *versionRound { return r.open }, n)
}

func waitRound(t *testing.T, r *versionReader, name string, round func() *versionRound, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		got := -1
		if rd := round(); rd != nil {
			got = rd.waiters
		}
		r.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d callers (-1: none is open), want %d", name, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestVersionReaderNeverSharesAnOlderRead: a caller that starts after a
// write completed never gets the answer of a read that began before it,
// even though that read was still in flight when the caller arrived.
func TestVersionReaderNeverSharesAnOlderRead(t *testing.T) {
	g := newGatedReads()
	r := &versionReader{read: g.read}
	first := make(chan int64, 1)
	go func() {
		v, _ := r.get(context.Background())
		first <- v
	}()
	if v := <-g.started; v != 0 {
		t.Fatalf("first read began at %d", v)
	}
	g.count.Store(1) // a write completes while the first read is in flight
	second := make(chan int64, 1)
	go func() {
		v, _ := r.get(context.Background())
		second <- v
	}()
	waitWaiters(t, r, 1)
	g.release <- struct{}{}
	if v := <-first; v != 0 {
		t.Errorf("first caller got %d, want 0", v)
	}
	if v := <-g.started; v != 1 {
		t.Fatalf("the second read began at %d, want 1", v)
	}
	g.release <- struct{}{}
	if v := <-second; v != 1 {
		t.Errorf("the caller that came after the write got %d, want 1", v)
	}
}

// TestVersionReaderShares: callers that arrive while a read is in flight
// share one more read, instead of one each.
func TestVersionReaderShares(t *testing.T) {
	g := newGatedReads()
	r := &versionReader{read: g.read}
	var wg sync.WaitGroup
	wg.Go(func() { r.get(context.Background()) })
	<-g.started
	g.count.Store(7)
	const n = 50
	got := make(chan int64, n)
	for range n {
		wg.Go(func() {
			v, err := r.get(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- v
		})
	}
	waitWaiters(t, r, n)
	close(g.release) // every read from now on answers at once
	wg.Wait()
	checkShared(t, got, g, 7, 2, n+1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running || r.next != nil {
		t.Errorf("after the callers: running %v, next %v; want idle", r.running, r.next)
	}
}

// TestVersionReaderCallerGivesUp: a caller waiting for a shared read that
// hangs returns when its own ctx ends; the read goes on for the others.
func TestVersionReaderCallerGivesUp(t *testing.T) {
	g := newGatedReads()
	r := &versionReader{read: g.read}
	go r.get(context.Background())
	<-g.started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("get = %v, want the caller's deadline", err)
	}
	close(g.release)
}

// TestVersionReaderLeaderWaitsForRunnableCallers: callers that arrive
// while the first one yields, before its read begins, share that read:
// one read for all of them, and it began after each of them did.
func TestVersionReaderLeaderWaitsForRunnableCallers(t *testing.T) {
	g := newGatedReads()
	const n = 20
	joined := make(chan struct{})
	r := &versionReader{read: g.read}
	r.yield = func() { <-joined }
	var wg sync.WaitGroup
	got := make(chan int64, n+1)
	get := func() {
		v, err := r.get(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- v
	}
	wg.Go(get)
	// The leader is in yield: its round is open, its read not begun.
	waitOpen(t, r, 0)
	g.count.Store(3) // a write completes before the others arrive
	for range n {
		wg.Go(get)
	}
	waitOpen(t, r, n)
	close(joined)
	if v := <-g.started; v != 3 {
		t.Fatalf("the shared read began at %d, want 3", v)
	}
	close(g.release)
	wg.Wait()
	checkShared(t, got, g, 3, 1, n+1)
}

// checkShared checks that every one of callers got want, from reads reads.
func checkShared(t *testing.T, got chan int64, g *gatedReads, want, reads int64, callers int) {
	t.Helper()
	close(got)
	for v := range got {
		if v != want {
			t.Errorf("a caller got %d, want %d", v, want)
		}
	}
	if n := g.reads.Load(); n != reads {
		t.Errorf("%d reads for %d callers, want %d", n, callers, reads)
	}
}

// TestVersionReaderSharedReadOutlivesLeader: once others share the
// leader's read, the leader's cancellation does not fail them.
func TestVersionReaderSharedReadOutlivesLeader(t *testing.T) {
	g := newGatedReads()
	joined := make(chan struct{})
	r := &versionReader{read: g.read}
	r.yield = func() { <-joined }
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() {
		_, err := r.get(ctx)
		leader <- err
	}()
	other := make(chan error, 1)
	waitOpen(t, r, 0)
	go func() {
		_, err := r.get(context.Background())
		other <- err
	}()
	waitOpen(t, r, 1)
	close(joined)
	<-g.started
	cancel()
	time.Sleep(10 * time.Millisecond) // a read bound to ctx would end now
	close(g.release)
	if err := <-other; err != nil {
		t.Errorf("the joiner got %v after the leader's cancellation, want the count", err)
	}
	if err := <-leader; err != nil {
		t.Errorf("the leader got %v, want the count it read", err)
	}
}

// TestVersionReaderPanicFailsJoiners: a read that panics (net/http
// recovers the leader's handler) gives the callers sharing it an error,
// never a count of 0 that could match a stale copy, and the next caller
// reads again.
func TestVersionReaderPanicFailsJoiners(t *testing.T) {
	joined := make(chan struct{})
	var reads atomic.Int64
	r := &versionReader{read: func(context.Context) (int64, error) {
		if reads.Add(1) == 1 {
			panic("driver bug")
		}
		return 5, nil
	}}
	r.yield = func() { <-joined }
	leader := make(chan any, 1)
	go func() {
		defer func() { leader <- recover() }()
		r.get(context.Background())
	}()
	waitOpen(t, r, 0)
	other := make(chan error, 1)
	go func() {
		_, err := r.get(context.Background())
		other <- err
	}()
	waitOpen(t, r, 1)
	close(joined)
	if p := <-leader; p != "driver bug" {
		t.Fatalf("the leader recovered %v, want the read's panic", p)
	}
	if err := <-other; !errors.Is(err, errReadIncomplete) {
		t.Errorf("the joiner got %v, want errReadIncomplete", err)
	}
	r.yield = func() {}
	if v, err := r.get(context.Background()); v != 5 || err != nil {
		t.Errorf("after the panic: %d, %v; want 5, nil", v, err)
	}
}
