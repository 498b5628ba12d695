// Package bookstest is the conformance suite every books.Store passes, in
// the manner of storetest for the auth server's stores: a backend's test
// calls Run with a way to open a store on a fresh database, and every
// promise of the books.Store comments is checked against it, concurrency,
// persistence across a reopen and failures included.
//
//	func TestStore(t *testing.T) {
//		bookstest.Run(t, func(t *testing.T) bookstest.OpenFunc {
//			path := filepath.Join(t.TempDir(), "books.db")
//			return func(t *testing.T) books.Store {
//				s, err := books.OpenSQLite(t.Context(), path)
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { s.Close() })
//				return s
//			}
//		})
//	}
package bookstest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/books"
)

// OpenFunc opens a Store on the database of the subtest it was made for.
// Each call returns another Store on that same database, as a restart or a
// second server process would get, closed when the test ends; the suite
// may close it before. A backend whose database lives only as long as its
// Store (SQLite's ":memory:") calls t.Skip on the second call.
type OpenFunc func(t *testing.T) books.Store

// Run checks the books.Store contract. newDB is called once per subtest
// and returns how to open a database of that subtest's own, empty the
// first time it is opened. A network backend that is not configured skips
// (t.Skip) in newDB.
func Run(t *testing.T, newDB func(t *testing.T) OpenFunc) {
	tests := []struct {
		name string
		run  func(t *testing.T, open OpenFunc)
	}{
		{"Ping", testPing},
		{"Empty", testEmpty},
		{"BookCRUD", testBookCRUD},
		{"BookNotFound", testBookNotFound},
		{"StoresWhatItIsGiven", testStoresWhatItIsGiven},
		{"RefusesNUL", testRefusesNUL},
		{"BooksInIDOrder", testBooksInIDOrder},
		{"IDsNeverReused", testIDsNeverReused},
		{"ArticlesByOwner", testArticlesByOwner},
		{"ArticleTimesInUTC", testArticleTimesInUTC},
		{"SeedDemoIdempotent", testSeedDemoIdempotent},
		{"SeedDemoLeavesBooksAlone", testSeedDemoLeavesBooksAlone},
		{"ConcurrentCreates", testConcurrentCreates},
		{"ConcurrentStores", testConcurrentStores},
		{"PersistsAcrossReopen", testPersistsAcrossReopen},
		{"CanceledContext", testCanceledContext},
		{"UseAfterClose", testUseAfterClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newDB(t))
		})
	}
}

// checkNoAnswer fails if err, from a call that must fail, is nil or poses
// as an answer (ErrNotFound).
func checkNoAnswer(tb testing.TB, what string, err error) {
	tb.Helper()
	switch {
	case err == nil:
		tb.Errorf("%s succeeded", what)
	case errors.Is(err, books.ErrNotFound):
		tb.Errorf("%s = %v: a failure must not pass for an answer", what, err)
	}
}

func mustCreateBook(tb testing.TB, s books.Store, b books.Book) books.Book {
	tb.Helper()
	got, err := s.CreateBook(context.Background(), b)
	if err != nil {
		tb.Fatalf("CreateBook(%+v): %v", b, err)
	}
	return got
}

func mustListBooks(tb testing.TB, s books.Store) []books.Book {
	tb.Helper()
	list, err := s.ListBooks(context.Background())
	if err != nil {
		tb.Fatalf("ListBooks: %v", err)
	}
	return list
}

func mustListArticles(tb testing.TB, s books.Store, owner string) []books.Article {
	tb.Helper()
	list, err := s.ListArticles(context.Background(), owner)
	if err != nil {
		tb.Fatalf("ListArticles(%q): %v", owner, err)
	}
	return list
}

func testPing(t *testing.T, open OpenFunc) {
	if err := open(t).Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testEmpty(t *testing.T, open OpenFunc) {
	s := open(t)
	if list := mustListBooks(t, s); list == nil || len(list) != 0 {
		t.Errorf("ListBooks on an empty store = %#v, want an empty non-nil slice", list)
	}
	if list := mustListArticles(t, s, "u1"); list == nil || len(list) != 0 {
		t.Errorf("ListArticles on an empty store = %#v, want an empty non-nil slice", list)
	}
}

func testBookCRUD(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	b := mustCreateBook(t, s, books.Book{ID: 99, Author: "A", Title: "T", Pages: 10, Year: -400})
	if b.ID != 1 {
		t.Errorf("CreateBook ID = %d, want 1 (the first on a new database; the given ID is ignored)", b.ID)
	}
	if got, err := s.Book(ctx, b.ID); err != nil || got != b {
		t.Errorf("Book = %+v, %v; want %+v", got, err, b)
	}
	b.Title, b.Country = "T2", "Greece"
	got, err := s.UpdateBook(ctx, b)
	if err != nil || got != b {
		t.Fatalf("UpdateBook = %+v, %v; want %+v", got, err, b)
	}
	if got, err := s.Book(ctx, b.ID); err != nil || got != b {
		t.Errorf("after update Book = %+v, %v; want %+v", got, err, b)
	}
	if err := s.DeleteBook(ctx, b.ID); err != nil {
		t.Fatalf("DeleteBook: %v", err)
	}
	if _, err := s.Book(ctx, b.ID); !errors.Is(err, books.ErrNotFound) {
		t.Errorf("Book(deleted) err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteBook(ctx, b.ID); !errors.Is(err, books.ErrNotFound) {
		t.Errorf("DeleteBook(deleted) err = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateBook(ctx, b); !errors.Is(err, books.ErrNotFound) {
		t.Errorf("UpdateBook(deleted) err = %v, want ErrNotFound", err)
	}
}

func testBookNotFound(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	kept := mustCreateBook(t, s, books.Book{Author: "A", Title: "Kept", Pages: 1})
	for _, id := range []int64{42, 0, -1, math.MaxInt64} {
		if _, err := s.Book(ctx, id); !errors.Is(err, books.ErrNotFound) {
			t.Errorf("Book(%d) err = %v, want ErrNotFound", id, err)
		}
		if _, err := s.UpdateBook(ctx, books.Book{ID: id, Author: "A", Title: "T", Pages: 1}); !errors.Is(err, books.ErrNotFound) {
			t.Errorf("UpdateBook(%d) err = %v, want ErrNotFound", id, err)
		}
		if err := s.DeleteBook(ctx, id); !errors.Is(err, books.ErrNotFound) {
			t.Errorf("DeleteBook(%d) err = %v, want ErrNotFound", id, err)
		}
	}
	if list := mustListBooks(t, s); len(list) != 1 || list[0] != kept {
		t.Errorf("after calls on missing books ListBooks = %+v, want only %+v: an update must create nothing", list, kept)
	}
}

// testStoresWhatItIsGiven: the store does not validate, the HTTP layer
// does, so values the HTTP layer would refuse come back as they went in,
// on every backend: empty and overlong text, any int, text that looks
// like SQL, spaces kept.
func testStoresWhatItIsGiven(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	long := strings.Repeat("ñ", 10_000)
	cases := []books.Book{
		{Author: "", Title: "", Pages: 0, Year: 0},
		{Author: long, Country: long, Language: long, Title: long, Pages: math.MaxInt, Year: math.MinInt},
		{Author: "  Ngũgĩ wa Thiong'o ", Country: "Kenya", Language: "Gĩkũyũ", Title: "Devil on the Cross 🔥\u0301", Pages: -5, Year: math.MaxInt},
		{Author: `Robert'); DROP TABLE books; --`, Title: `"quoted" \ back\slash $1 ?`, Pages: 1, Year: 1},
	}
	for i, want := range cases {
		got := mustCreateBook(t, s, want)
		want.ID = got.ID
		if got != want {
			t.Errorf("case %d: CreateBook returned %+v, want %+v", i, got, want)
		}
		if stored, err := s.Book(ctx, got.ID); err != nil || stored != want {
			t.Errorf("case %d: Book = %+v, %v; want %+v", i, stored, err, want)
		}
	}
	a, err := s.CreateArticle(ctx, "owner with spaces ", books.Article{Title: "", Body: strings.Repeat("b", 200_000), Author: ""})
	if err != nil {
		t.Fatalf("CreateArticle: %v", err)
	}
	if list := mustListArticles(t, s, "owner with spaces "); len(list) != 1 || list[0] != a {
		t.Errorf("ListArticles = %d articles, want [the one stored]", len(list))
	}
	if list := mustListArticles(t, s, "owner with spaces"); len(list) != 0 {
		t.Errorf("an owner differing by a space sees %d articles, want 0", len(list))
	}
}

// testRefusesNUL: text with NUL is refused, with an error that is no
// answer, and nothing is written.
func testRefusesNUL(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	b := mustCreateBook(t, s, books.Book{Author: "A", Title: "T", Pages: 1})
	_, err := s.CreateBook(ctx, books.Book{Author: "A", Title: "a\x00b", Pages: 1})
	checkNoAnswer(t, "CreateBook with NUL", err)
	bad := b
	bad.Author = "\x00"
	_, err = s.UpdateBook(ctx, bad)
	checkNoAnswer(t, "UpdateBook with NUL", err)
	if list := mustListBooks(t, s); len(list) != 1 || list[0] != b {
		t.Errorf("after refused writes ListBooks = %+v, want [%+v]", list, b)
	}
	_, err = s.CreateArticle(ctx, "u1", books.Article{Title: "t", Body: "b\x00", Author: "anna"})
	checkNoAnswer(t, "CreateArticle with NUL", err)
	_, err = s.CreateArticle(ctx, "u\x001", books.Article{Title: "t", Body: "b", Author: "anna"})
	checkNoAnswer(t, "CreateArticle for an owner with NUL", err)
	if list := mustListArticles(t, s, "u1"); len(list) != 0 {
		t.Errorf("a refused article was stored: %+v", list)
	}
	if list := mustListArticles(t, s, "u\x001"); list == nil || len(list) != 0 {
		t.Errorf("ListArticles for an owner with NUL = %#v, want an empty non-nil slice", list)
	}
}

func testBooksInIDOrder(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	var created []books.Book
	for i := range 6 {
		created = append(created, mustCreateBook(t, s, books.Book{Author: "A", Title: fmt.Sprint("T", 5-i), Pages: i + 1}))
	}
	for i := 1; i < len(created); i++ {
		if created[i].ID <= created[i-1].ID {
			t.Errorf("book %d got id %d after id %d: ids must grow", i, created[i].ID, created[i-1].ID)
		}
	}
	if err := s.DeleteBook(ctx, created[2].ID); err != nil {
		t.Fatal(err)
	}
	want := slices.Delete(slices.Clone(created), 2, 3)
	if got := mustListBooks(t, s); !slices.Equal(got, want) {
		t.Errorf("ListBooks = %+v, want %+v (id order, not title order)", got, want)
	}
}

func testIDsNeverReused(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	mustCreateBook(t, s, books.Book{Author: "A", Title: "first", Pages: 1})
	last := mustCreateBook(t, s, books.Book{Author: "A", Title: "newest", Pages: 1})
	if err := s.DeleteBook(ctx, last.ID); err != nil {
		t.Fatal(err)
	}
	next := mustCreateBook(t, s, books.Book{Author: "A", Title: "next", Pages: 1})
	if next.ID <= last.ID {
		t.Errorf("after deleting the newest book (id %d), a new one got id %d: a deleted id was handed out again", last.ID, next.ID)
	}
	for _, b := range mustListBooks(t, s) {
		if err := s.DeleteBook(ctx, b.ID); err != nil {
			t.Fatal(err)
		}
	}
	if again := mustCreateBook(t, s, books.Book{Author: "A", Title: "again", Pages: 1}); again.ID <= next.ID {
		t.Errorf("after deleting every book (newest id %d), a new one got id %d", next.ID, again.ID)
	}
}

func testArticlesByOwner(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	var mine []books.Article
	for i := range 3 {
		a, err := s.CreateArticle(ctx, "u1", books.Article{ID: 7, Title: fmt.Sprint("t", i), Body: "b", Author: "anna", CreatedAt: time.Unix(0, 0)})
		if err != nil {
			t.Fatalf("CreateArticle: %v", err)
		}
		if a.ID == 7 || a.CreatedAt.Equal(time.Unix(0, 0)) {
			t.Errorf("CreateArticle kept the given ID or CreatedAt: %+v", a)
		}
		if a.Title != fmt.Sprint("t", i) || a.Body != "b" || a.Author != "anna" {
			t.Errorf("CreateArticle returned %+v, want the fields as given", a)
		}
		mine = append(mine, a)
		if _, err := s.CreateArticle(ctx, "u2", books.Article{Title: "other", Body: "b", Author: "bob"}); err != nil {
			t.Fatalf("CreateArticle: %v", err)
		}
	}
	if list := mustListArticles(t, s, "u1"); !slices.Equal(list, mine) {
		t.Errorf("ListArticles(u1) = %+v, want %+v", list, mine)
	}
	if list := mustListArticles(t, s, "u2"); len(list) != 3 || list[0].Author != "bob" {
		t.Errorf("ListArticles(u2) = %+v, want bob's 3", list)
	}
	if list := mustListArticles(t, s, "U1"); len(list) != 0 {
		t.Errorf("ListArticles(U1) = %+v: owners are compared exactly", list)
	}
	if list := mustListArticles(t, s, "nobody"); list == nil || len(list) != 0 {
		t.Errorf("ListArticles(nobody) = %#v, want an empty non-nil slice", list)
	}
	for i := 1; i < len(mine); i++ {
		if mine[i].ID <= mine[i-1].ID {
			t.Errorf("article ids %d then %d: ids must grow", mine[i-1].ID, mine[i].ID)
		}
	}
}

// testArticleTimesInUTC: CreatedAt comes from the store's clock, in UTC,
// to the second, and comes back from the database exactly so (the struct
// comparison checks the location too).
func testArticleTimesInUTC(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	before := time.Now().Truncate(time.Second)
	a, err := s.CreateArticle(ctx, "u1", books.Article{Title: "t", Body: "b", Author: "anna"})
	after := time.Now()
	if err != nil {
		t.Fatalf("CreateArticle: %v", err)
	}
	if a.CreatedAt.Location() != time.UTC || a.CreatedAt.Nanosecond() != 0 {
		t.Errorf("CreatedAt = %v, want UTC, whole seconds", a.CreatedAt)
	}
	if a.CreatedAt.Before(before) || a.CreatedAt.After(after) {
		t.Errorf("CreatedAt = %v, want between %v and %v", a.CreatedAt, before, after)
	}
	list := mustListArticles(t, s, "u1")
	if len(list) != 1 || list[0] != a {
		t.Fatalf("ListArticles = %+v, want [%+v]", list, a)
	}
	if list[0].CreatedAt.Location() != time.UTC {
		t.Errorf("stored CreatedAt comes back in %v, want UTC", list[0].CreatedAt.Location())
	}
}

func testSeedDemoIdempotent(t *testing.T, open OpenFunc) {
	s := open(t)
	for range 3 {
		if err := s.SeedDemo(t.Context()); err != nil {
			t.Fatalf("SeedDemo: %v", err)
		}
	}
	list := mustListBooks(t, s)
	if len(list) != 3 {
		t.Fatalf("%d books after three seeds, want 3", len(list))
	}
	want := books.Book{ID: 1, Author: "Chinua Achebe", Country: "Nigeria", Language: "English", Pages: 209, Title: "Things Fall Apart", Year: 1958}
	if list[0] != want {
		t.Errorf("first book = %+v, want %+v", list[0], want)
	}
	if list[1].Title != "Fairy tales" || list[2].Title != "The Divine Comedy" || list[2].Year != 1315 {
		t.Errorf("seeded books = %+v", list)
	}
}

func testSeedDemoLeavesBooksAlone(t *testing.T, open OpenFunc) {
	s := open(t)
	mine := mustCreateBook(t, s, books.Book{Author: "A", Title: "Mine", Pages: 1})
	if err := s.SeedDemo(t.Context()); err != nil {
		t.Fatalf("SeedDemo: %v", err)
	}
	if list := mustListBooks(t, s); len(list) != 1 || list[0] != mine {
		t.Errorf("ListBooks = %+v, want the 1 already there", list)
	}
}

// testConcurrentCreates: creates racing on one store all succeed, with
// distinct ids, and all are listed.
func testConcurrentCreates(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	const n = 40
	var wg sync.WaitGroup
	bookIDs := make(chan int64, n)
	articleIDs := make(chan int64, n)
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			b, err := s.CreateBook(ctx, books.Book{Author: "A", Title: fmt.Sprint("T", i), Pages: i + 1})
			if err != nil {
				errs <- err
				return
			}
			bookIDs <- b.ID
			a, err := s.CreateArticle(ctx, "u1", books.Article{Title: fmt.Sprint("t", i), Body: "b", Author: "anna"})
			if err != nil {
				errs <- err
				return
			}
			articleIDs <- a.ID
		})
	}
	wg.Wait()
	close(errs)
	close(bookIDs)
	close(articleIDs)
	for err := range errs {
		t.Error(err)
	}
	for name, ids := range map[string]chan int64{"book": bookIDs, "article": articleIDs} {
		seen := map[int64]bool{}
		for id := range ids {
			if seen[id] || id <= 0 {
				t.Errorf("%s id %d handed out twice, or not positive", name, id)
			}
			seen[id] = true
		}
	}
	if list := mustListBooks(t, s); len(list) != n {
		t.Errorf("%d books listed, want %d", len(list), n)
	}
	if list := mustListArticles(t, s, "u1"); len(list) != n {
		t.Errorf("%d articles listed, want %d", len(list), n)
	}
}

// testConcurrentStores: two Stores on one database (two processes, two
// replicas) seed and create at once: the seed happens once, and every
// create is kept.
func testConcurrentStores(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s, s2 := open(t), open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for i := range 20 {
		for _, st := range []books.Store{s, s2} {
			wg.Go(func() {
				if err := st.SeedDemo(ctx); err != nil {
					errs <- err
				}
				if _, err := st.CreateBook(ctx, books.Book{Author: "A", Title: "T", Pages: i + 1}); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list := mustListBooks(t, s)
	if len(list) != 43 {
		t.Errorf("%d books, want 3 seeded + 40 created", len(list))
	}
	seeded := 0
	for _, b := range list {
		if b.Title == "Things Fall Apart" {
			seeded++
		}
	}
	if seeded != 1 {
		t.Errorf("the demo was seeded %d times, want once", seeded)
	}
	if other := mustListBooks(t, s2); !slices.Equal(other, list) {
		t.Errorf("the second store lists %d books, the first %d", len(other), len(list))
	}
}

func testPersistsAcrossReopen(t *testing.T, open OpenFunc) {
	ctx := t.Context()
	s := open(t)
	if err := s.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	b := mustCreateBook(t, s, books.Book{Author: "A", Title: "Kept", Pages: 5, Year: 2000})
	a, err := s.CreateArticle(ctx, "u1", books.Article{Title: "t", Body: "b", Author: "anna"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t) // migrations must not run twice
	if err := s.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Book(ctx, b.ID); err != nil || got != b {
		t.Errorf("after reopen Book = %+v, %v; want %+v", got, err, b)
	}
	if list := mustListBooks(t, s); len(list) != 4 {
		t.Errorf("%d books after reopen, want 4", len(list))
	}
	if list := mustListArticles(t, s, "u1"); len(list) != 1 || list[0] != a {
		t.Errorf("articles after reopen = %+v, want [%+v]", list, a)
	}
	if next := mustCreateBook(t, s, books.Book{Author: "A", Title: "Next", Pages: 1}); next.ID <= b.ID {
		t.Errorf("after reopen a new book got id %d, not above %d", next.ID, b.ID)
	}
}

// calls are every Store method but Close, each returning its error.
func calls(s books.Store) map[string]func(ctx context.Context) error {
	b := books.Book{ID: 1, Author: "A", Title: "T", Pages: 1}
	return map[string]func(ctx context.Context) error{
		"Ping":      s.Ping,
		"ListBooks": func(ctx context.Context) error { _, err := s.ListBooks(ctx); return err },
		"Book":      func(ctx context.Context) error { _, err := s.Book(ctx, 1); return err },
		"CreateBook": func(ctx context.Context) error {
			_, err := s.CreateBook(ctx, b)
			return err
		},
		"UpdateBook":   func(ctx context.Context) error { _, err := s.UpdateBook(ctx, b); return err },
		"DeleteBook":   func(ctx context.Context) error { return s.DeleteBook(ctx, 1) },
		"ListArticles": func(ctx context.Context) error { _, err := s.ListArticles(ctx, "u1"); return err },
		"CreateArticle": func(ctx context.Context) error {
			_, err := s.CreateArticle(ctx, "u1", books.Article{Title: "t", Body: "b", Author: "anna"})
			return err
		},
		"SeedDemo": s.SeedDemo,
	}
}

// testCanceledContext: a canceled ctx fails every method with an error
// that wraps context.Canceled, and changes nothing.
func testCanceledContext(t *testing.T, open OpenFunc) {
	s := open(t)
	b := mustCreateBook(t, s, books.Book{Author: "A", Title: "Kept", Pages: 1})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, call := range calls(s) {
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s(canceled) = %v, want context.Canceled", name, err)
		}
	}
	if list := mustListBooks(t, s); len(list) != 1 || list[0] != b {
		t.Errorf("after canceled calls ListBooks = %+v, want [%+v]", list, b)
	}
	if list := mustListArticles(t, s, "u1"); len(list) != 0 {
		t.Errorf("a canceled CreateArticle stored %+v", list)
	}
}

// testUseAfterClose: Close may be called twice, and every method fails
// afterwards with an error, not a panic and not an answer.
func testUseAfterClose(t *testing.T, open OpenFunc) {
	s := open(t)
	mustCreateBook(t, s, books.Book{Author: "A", Title: "T", Pages: 1})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for name, call := range calls(s) {
		checkNoAnswer(t, name+" after Close", call(t.Context()))
	}
}
