package books_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey/books"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

// The stores keep GET /books's answer in memory (books/cache.go). These
// tests hold them to the rule that makes that safe with several replicas:
// a book written through one Store is listed by every other Store on the
// same database from the first call that starts after the write returned,
// whoever wrote it and however.

// backend gives a fresh database and opens Stores on it, as books
// replicas (or processes) would, with a way to write to it outside any
// Store.
type backend struct {
	name string
	// newDB makes a new database; open opens one more Store on it, and
	// exec runs SQL on it directly, as another tool would.
	newDB func(t *testing.T) (open func() books.Store, exec func(sql string))
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) (func() books.Store, func(string)) {
			path := filepath.Join(t.TempDir(), "books.db")
			other := mustOpenSQLite(t, path) // its own pool: another process
			return func() books.Store { return mustOpenSQLite(t, path) }, func(q string) {
				t.Helper()
				if err := books.ExecSQLiteForTest(t.Context(), other, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}},
		{"postgres", func(t *testing.T) (func() books.Store, func(string)) {
			cfg := books.PostgresConfig{URL: pgdbtest.URL(t), Schema: pgdbtest.Schema(t)}
			mustOpenPostgres(t, cfg) // creates the schema
			admin := pgdbtest.Admin(t, pgdbtest.URL(t))
			if _, err := admin.Exec(t.Context(), `SET search_path TO `+pgx.Identifier{cfg.Schema}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			return func() books.Store { return mustOpenPostgres(t, cfg) }, func(q string) {
				t.Helper()
				if _, err := admin.Exec(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}},
	}
}

// TestListSeesOtherStoresWrites: every kind of write through Store a,
// and writes made outside any Store, are listed at once by Store b, whose
// copy was warm before each write.
func TestListSeesOtherStoresWrites(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			ctx := t.Context()
			open, exec := be.newDB(t)
			a, b := open(), open()
			// check lists on a and on b twice (the second time from their
			// copies) and compares with what a Store opened just now, with
			// no copy yet, reads from the database.
			check := func(after string) {
				t.Helper()
				fresh := open()
				want, err := fresh.ListBooks(ctx)
				if err != nil {
					t.Fatalf("after %s: ListBooks: %v", after, err)
				}
				fresh.Close()
				for range 2 {
					for name, s := range map[string]books.Store{"a": a, "b": b} {
						got, err := s.ListBooks(ctx)
						if err != nil {
							t.Fatalf("after %s: %s.ListBooks: %v", after, name, err)
						}
						if !slices.Equal(got, want) {
							t.Fatalf("after %s, %s lists %+v; the database holds %+v", after, name, got, want)
						}
					}
				}
			}
			check("nothing")
			if err := a.SeedDemo(ctx); err != nil {
				t.Fatal(err)
			}
			check("a's SeedDemo")
			bk, err := a.CreateBook(ctx, books.Book{Author: "A", Title: "New", Pages: 1, Year: 2000})
			if err != nil {
				t.Fatal(err)
			}
			check("a's CreateBook")
			if list, _ := b.ListBooks(ctx); len(list) != 4 || list[3] != bk {
				t.Fatalf("b lists %+v, want the 3 seeded and %+v", list, bk)
			}
			bk.Title = "Changed"
			if _, err := a.UpdateBook(ctx, bk); err != nil {
				t.Fatal(err)
			}
			check("a's UpdateBook")
			if list, _ := b.ListBooks(ctx); list[3].Title != "Changed" {
				t.Fatalf("b lists %+v after the update", list[3])
			}
			if err := a.DeleteBook(ctx, bk.ID); err != nil {
				t.Fatal(err)
			}
			check("a's DeleteBook")
			if list, _ := b.ListBooks(ctx); len(list) != 3 {
				t.Fatalf("b lists %d books after the delete, want 3", len(list))
			}
			// Writes no Store made: another tool on the same database.
			exec(`UPDATE books SET pages = pages + 1 WHERE id = 1`)
			check("an UPDATE outside the stores")
			exec(`DELETE FROM books WHERE id = 2`)
			check("a DELETE outside the stores")
			exec(`INSERT INTO books (author, title, pages, year) VALUES ('X', 'Y', 1, 1)`)
			check("an INSERT outside the stores")
			if be.name == "postgres" {
				exec(`TRUNCATE books`)
				check("a TRUNCATE")
			} else {
				exec(`DELETE FROM books`)
				check("a DELETE of every row")
			}
			if list, _ := b.ListBooks(ctx); len(list) != 0 {
				t.Fatalf("b lists %+v after every book was deleted", list)
			}
			// Writes that change nothing do not empty the copy; they
			// must not matter either way, only be right.
			if err := a.DeleteBook(ctx, 999); err == nil {
				t.Fatal("DeleteBook(999) on an empty table succeeded")
			}
			check("a DELETE of nothing")
		})
	}
}

// TestListOverHTTPAcrossReplicas: two books servers on one database, as
// two replicas behind a load balancer. A POST answered by one is in the
// very next GET /books of the other, under concurrent readers of both;
// and the body served from memory is byte for byte what the handler
// encodes for a Store that keeps no copy.
func TestListOverHTTPAcrossReplicas(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			open, _ := be.newDB(t)
			a, b := open(), open()
			if err := a.SeedDemo(t.Context()); err != nil {
				t.Fatal(err)
			}
			ha, hb := newHandler(t, a), newHandler(t, b)
			plain := newHandler(t, uncached{b}) // encodes Store.ListBooks
			var (
				stop    atomic.Bool
				readers sync.WaitGroup
			)
			// Stop the readers before the stores close, on a failure too.
			defer func() { stop.Store(true); readers.Wait() }()
			for _, h := range []http.Handler{ha, hb, ha, hb} {
				readers.Go(func() {
					for !stop.Load() {
						if status, body := serve(h, "GET", "/books", ""); status != http.StatusOK {
							t.Errorf("GET /books under load: %d %s", status, body)
							return
						}
					}
				})
			}
			deadline := time.Now().Add(5 * time.Second)
			for i := range 30 {
				if time.Now().After(deadline) {
					break
				}
				writer, reader := ha, hb
				if i%2 == 1 {
					writer, reader = hb, ha
				}
				body := fmt.Sprintf(`{"author":"A","title":"T%d","pages":%d,"year":2000}`, i, i+1)
				if status, resp := serve(writer, "POST", "/books", body); status != http.StatusCreated {
					t.Fatalf("POST: %d %s", status, resp)
				}
				_, got := serve(reader, "GET", "/books", "")
				want := fmt.Sprintf(`"title":"T%d"`, i)
				if !strings.Contains(got, want) {
					t.Fatalf("after a POST to one replica, the other's GET /books lacks %s: %s", want, got)
				}
				if _, enc := serve(plain, "GET", "/books", ""); enc != got {
					t.Fatalf("body from memory differs from the encoded list:\n%s\n%s", got, enc)
				}
			}
		})
	}
}

// TestListBooksReturnsACopy: a caller that changes the slice ListBooks
// returned changes nothing the next caller sees.
func TestListBooksReturnsACopy(t *testing.T) {
	s := mustOpenSQLite(t, ":memory:")
	if err := s.SeedDemo(t.Context()); err != nil {
		t.Fatal(err)
	}
	first, err := s.ListBooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first[0].Title = "scribbled"
	_ = append(first[:1], books.Book{Title: "appended"})
	second, err := s.ListBooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if second[0].Title != "Things Fall Apart" || second[1].Title != "Fairy tales" {
		t.Errorf("a caller's change reached the store's copy: %+v", second)
	}
}

// uncached hides the store's encoded copy from the handler, which then
// encodes ListBooks itself, as for any Store of another package.
type uncached struct{ books.Store }
