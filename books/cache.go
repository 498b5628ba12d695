package books

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// listCache keeps the answer to GET /books in memory, encoded, together
// with the books_version count it was built under. Every change to the
// books table moves that count (a trigger, in the writing transaction,
// on both backends), so before answering from memory a store reads the
// one counter row: the same count means that no book was written since,
// through this Store or any other on the same database. Reading one row
// is what each request still costs; reading, scanning and encoding every
// book happens once per change. See docs/decisions.md, "GET /books from
// memory".
//
// The count is read before the list, never after, so a copy can only be
// labelled older than what it holds: a write that lands between the two
// reads is in the copy and moves the count past its label, and the next
// request builds the copy again. A copy is therefore never served after a
// write that committed before the request read the count.
//
// Concurrent requests share reads of the count (versionReader), but only
// reads that began after they did, so the rule holds for each of them.
type listCache struct {
	cur     atomic.Pointer[listSnapshot]
	version versionReader
	load    func(context.Context) ([]Book, error)
}

// newListCache returns a cache that reads the count with version and
// the books with load.
func newListCache(version func(context.Context) (int64, error), load func(context.Context) ([]Book, error)) *listCache {
	return &listCache{version: versionReader{read: version}, load: load}
}

// listSnapshot is one built answer.
type listSnapshot struct {
	version int64
	books   []Book
	// body is the list as handleListBooks's encoder would write it: JSON
	// and a newline.
	body []byte
}

// get returns the snapshot for the current count: the kept one if the
// count has not moved, else one built by load. A canceled ctx fails before
// anything is read, with an error wrapping ctx.Err().
func (c *listCache) get(ctx context.Context) (*listSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("books: list books: %w", err)
	}
	v, err := c.version.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("books: list books: version: %w", err)
	}
	if s := c.cur.Load(); s != nil && s.version == v {
		return s, nil
	}
	list, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("books: list books: encode: %w", err)
	}
	s := &listSnapshot{version: v, books: list, body: append(body, '\n')}
	// Concurrent builders may store in any order: whichever copy stays is
	// labelled no newer than its contents, so the rule above holds for it.
	c.cur.Store(s)
	return s, nil
}

// list is get for Store.ListBooks: a slice of the caller's own, which may
// change it without touching the copy.
func (c *listCache) list(ctx context.Context) ([]Book, error) {
	s, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Clone(s.books), nil
}

// versionReader lets concurrent callers share one read of the count, the
// way a group commit shares one commit. The rule it keeps: each caller
// gets a count read by a query that began after the caller did.
//
// A caller that finds no read in flight leads one, but first yields the
// processor (runtime.Gosched), so that requests already runnable reach
// this point and join the round before its query starts. On SQLite the
// read never blocks, so without the yield no two requests would ever
// share it: with one core serving 32 connections, each request paid a
// read of its own, a fifth of the server's time (docs/benchmarks.md).
// Alone, a caller loses only the yield, a fraction of a microsecond.
//
// A caller that finds a read in flight does not take that read's answer,
// which may predate a write the caller has seen complete, but waits for
// the next read, which starts when the one in flight ends, and which
// every caller arriving meanwhile shares: at most two reads' time, and
// with N callers at once, the database answers two reads instead of N.
// PostgreSQL gains there: its read is a network round trip during which
// the requests pile up.
type versionReader struct {
	read func(context.Context) (int64, error)
	// yield lets runnable callers join a round before its read starts;
	// nil is runtime.Gosched. Tests replace it to order callers.
	yield func()

	mu sync.Mutex
	// running: a round is open or its read in flight.
	running bool
	// open is the round whose leader is yielding: its read has not begun,
	// so a caller may still join it. Nil once the read starts.
	open *versionRound
	// next is the round waiting for the one in flight to end, nil until a
	// caller asks for it.
	next *versionRound
}

// versionRound is one shared read: done closes when v and err are set.
type versionRound struct {
	done chan struct{}
	v    int64
	err  error
	// waiters counts the callers that joined, under versionReader.mu.
	waiters int
}

func newVersionRound() *versionRound { return &versionRound{done: make(chan struct{})} }

// errReadIncomplete is what the callers sharing a read get if it panics
// (net/http recovers handlers): a count of 0 could match a stale copy.
var errReadIncomplete = errors.New("books: the shared version read did not complete")

// run reads into rd and releases its callers, even if read panics.
func (rd *versionRound) run(ctx context.Context, read func(context.Context) (int64, error)) {
	rd.err = errReadIncomplete
	defer close(rd.done)
	rd.v, rd.err = read(ctx)
}

// sharedReadTimeout bounds a shared read, which runs for callers that may
// each give up sooner (their ctx), but not for ever.
const sharedReadTimeout = 10 * time.Second

func (r *versionReader) get(ctx context.Context) (int64, error) {
	r.mu.Lock()
	if !r.running {
		r.running = true
		rd := newVersionRound()
		r.open = rd
		r.mu.Unlock()
		// Deferred, so that even a read that panics hands on to the
		// callers waiting for the next one.
		defer r.finish()
		if r.yield != nil {
			r.yield()
		} else {
			runtime.Gosched()
		}
		r.mu.Lock()
		r.open = nil
		shared := rd.waiters > 0
		r.mu.Unlock()
		if shared {
			// The read is the joiners' too: the leader's cancellation
			// must not fail them.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedReadTimeout)
			defer cancel()
			ctx = sctx
		}
		rd.run(ctx, r.read)
		return rd.v, rd.err
	}
	rd := r.open
	if rd == nil {
		if r.next == nil {
			r.next = newVersionRound()
		}
		rd = r.next
	}
	rd.waiters++
	r.mu.Unlock()
	select {
	case <-rd.done:
		return rd.v, rd.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// finish ends the read in flight and starts the next one if any caller
// waits for it; running stays true while that one runs.
func (r *versionReader) finish() {
	r.mu.Lock()
	rd := r.next
	r.next = nil
	r.running = rd != nil
	r.mu.Unlock()
	if rd == nil {
		return
	}
	go func() {
		defer r.finish()
		ctx, cancel := context.WithTimeout(context.Background(), sharedReadTimeout)
		defer cancel()
		rd.run(ctx, r.read)
	}()
}

// jsonLister is what handleListBooks asks of the stores of this package
// (each embeds a listCache): the list already encoded, shared (the caller
// must not change it).
type jsonLister interface {
	listBooksJSON(ctx context.Context) ([]byte, error)
}

func (c *listCache) listBooksJSON(ctx context.Context) ([]byte, error) {
	s, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.body, nil
}

var (
	_ jsonLister = (*SQLiteStore)(nil)
	_ jsonLister = (*PostgresStore)(nil)
)
