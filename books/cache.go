package books

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
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
type listCache struct {
	cur atomic.Pointer[listSnapshot]
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
func (c *listCache) get(ctx context.Context, version func(context.Context) (int64, error), load func(context.Context) ([]Book, error)) (*listSnapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("books: list books: %w", err)
	}
	v, err := version(ctx)
	if err != nil {
		return nil, fmt.Errorf("books: list books: version: %w", err)
	}
	if s := c.cur.Load(); s != nil && s.version == v {
		return s, nil
	}
	list, err := load(ctx)
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
func (c *listCache) list(ctx context.Context, version func(context.Context) (int64, error), load func(context.Context) ([]Book, error)) ([]Book, error) {
	s, err := c.get(ctx, version, load)
	if err != nil {
		return nil, err
	}
	return slices.Clone(s.books), nil
}

// jsonLister is what handleListBooks asks of the stores of this package:
// the list already encoded, shared (the caller must not change it).
type jsonLister interface {
	listBooksJSON(ctx context.Context) ([]byte, error)
}

var (
	_ jsonLister = (*SQLiteStore)(nil)
	_ jsonLister = (*PostgresStore)(nil)
)
