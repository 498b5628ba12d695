package books

import (
	"context"
	"database/sql"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/sqlitedb"
	"github.com/latchkey-dev/latchkey/token"
)

// newTestStore opens a fresh in-memory store, closed when the test ends.
func newTestStore(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(context.Background(), ":memory:")
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestStoreBooksCRUD(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)

	list, err := s.ListBooks(ctx)
	if err != nil || list == nil || len(list) != 0 {
		t.Fatalf("ListBooks on empty store = %v, %v; want empty non-nil slice", list, err)
	}
	b, err := s.CreateBook(ctx, Book{ID: 99, Author: "A", Title: "T", Pages: 10, Year: -400})
	if err != nil {
		t.Fatalf("CreateBook: %v", err)
	}
	if b.ID != 1 {
		t.Errorf("CreateBook ID = %d, want 1 (the given ID is ignored)", b.ID)
	}
	got, err := s.Book(ctx, b.ID)
	if err != nil || got != b {
		t.Errorf("Book = %+v, %v; want %+v", got, err, b)
	}
	b.Title, b.Country = "T2", "Greece"
	if _, err := s.UpdateBook(ctx, b); err != nil {
		t.Fatalf("UpdateBook: %v", err)
	}
	if got, _ := s.Book(ctx, b.ID); got != b {
		t.Errorf("after update Book = %+v, want %+v", got, b)
	}
	if _, err := s.UpdateBook(ctx, Book{ID: 42, Author: "A", Title: "T", Pages: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateBook(missing) err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteBook(ctx, b.ID); err != nil {
		t.Fatalf("DeleteBook: %v", err)
	}
	if _, err := s.Book(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Book(deleted) err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteBook(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("DeleteBook(deleted) err = %v, want ErrNotFound", err)
	}
}

func TestStoreArticlesByOwner(t *testing.T) {
	ctx := context.Background()
	s := newTestStore(t)
	now := time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600))
	s.Now = func() time.Time { return now }

	a, err := s.CreateArticle(ctx, "u1", Article{ID: 7, Title: "t", Body: "b", Author: "anna", CreatedAt: time.Unix(0, 0)})
	if err != nil {
		t.Fatalf("CreateArticle: %v", err)
	}
	want := now.UTC().Truncate(time.Second)
	if !a.CreatedAt.Equal(want) || a.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v in UTC", a.CreatedAt, want)
	}
	if _, err := s.CreateArticle(ctx, "u2", Article{Title: "other", Body: "b", Author: "bob"}); err != nil {
		t.Fatalf("CreateArticle: %v", err)
	}
	list, err := s.ListArticles(ctx, "u1")
	if err != nil || len(list) != 1 || list[0] != a {
		t.Errorf("ListArticles(u1) = %+v, %v; want [%+v]", list, err, a)
	}
	if list, _ := s.ListArticles(ctx, "nobody"); list == nil || len(list) != 0 {
		t.Errorf("ListArticles(nobody) = %#v, want empty non-nil slice", list)
	}
}

func TestSeedDemoIdempotent(t *testing.T) {
	ctx := context.Background()
	t.Run("empty store gets the three books once", func(t *testing.T) {
		s := newTestStore(t)
		for range 3 {
			if err := s.SeedDemo(ctx); err != nil {
				t.Fatalf("SeedDemo: %v", err)
			}
		}
		list, _ := s.ListBooks(ctx)
		if len(list) != 3 {
			t.Fatalf("%d books after three seeds, want 3", len(list))
		}
		want := Book{ID: 1, Author: "Chinua Achebe", Country: "Nigeria", Language: "English", Pages: 209, Title: "Things Fall Apart", Year: 1958}
		if list[0] != want {
			t.Errorf("first book = %+v, want %+v", list[0], want)
		}
		if list[1].Title != "Fairy tales" || list[2].Title != "The Divine Comedy" || list[2].Year != 1315 {
			t.Errorf("seeded books = %+v", list)
		}
	})
	t.Run("a store with books is left alone", func(t *testing.T) {
		s := newTestStore(t)
		if _, err := s.CreateBook(ctx, Book{Author: "A", Title: "Mine", Pages: 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.SeedDemo(ctx); err != nil {
			t.Fatalf("SeedDemo: %v", err)
		}
		if list, _ := s.ListBooks(ctx); len(list) != 1 {
			t.Errorf("%d books, want the 1 already there", len(list))
		}
	})
}

func TestStorePersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "books.db")

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateBook(ctx, Book{Author: "A", Title: "Kept", Pages: 5, Year: 2000})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateArticle(ctx, "u1", Article{Title: "t", Body: "b", Author: "anna"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {path, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("mode of %s = %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}

	s, err = Open(ctx, path) // migrations must not run twice
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if err := s.SeedDemo(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Book(ctx, b.ID); err != nil || got != b {
		t.Errorf("after reopen Book = %+v, %v; want %+v", got, err, b)
	}
	if list, _ := s.ListBooks(ctx); len(list) != 4 {
		t.Errorf("%d books after reopen, want 4", len(list))
	}
	if list, _ := s.ListArticles(ctx, "u1"); len(list) != 1 || list[0] != a {
		t.Errorf("articles after reopen = %+v, want [%+v]", list, a)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != 1 {
		t.Errorf("schema_migrations has %d rows (%v), want 1", n, err)
	}
}

func TestStoreConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "books.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A second Store on the same file stands in for a second process.
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for _, st := range []*Store{s, s2} {
			wg.Go(func() {
				if err := st.SeedDemo(ctx); err != nil {
					errs <- err
				}
				if _, err := st.CreateBook(ctx, Book{Author: "A", Title: "T", Pages: i + 1}); err != nil {
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
	if list, _ := s.ListBooks(ctx); len(list) != 43 {
		t.Errorf("%d books, want 3 seeded + 40 created", len(list))
	}
}

func TestOpenRejectsEmptyPath(t *testing.T) {
	if _, err := Open(context.Background(), ""); err == nil {
		t.Error("Open(\"\") succeeded")
	}
}

// TestPoolStaysBounded sends a burst of many more concurrent requests
// than the store's pool holds, reads and writes, through the handler: they
// queue for connections rather than open more (each one is open files),
// and the burst leaves no more open than the bound.
func TestPoolStaysBounded(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "books.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := New(Config{Store: s, Verifier: fixedVerifier{&token.Claims{Subject: "1", Username: "john", Role: "admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	bound := sqlitedb.PoolSize()
	if got := s.db.Stats().MaxOpenConnections; got != bound {
		t.Fatalf("MaxOpenConnections = %d, want %d", got, bound)
	}
	requests := []struct{ method, path, body string }{
		{"GET", "/books", ""},
		{"POST", "/books", validBook},
		{"GET", "/articles", ""},
		{"POST", "/articles", `{"title":"t","body":"b"}`},
	}
	const clients = 64
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		peak  int
		start = make(chan struct{})
	)
	errs := make(chan string, clients)
	for i := range clients {
		wg.Go(func() {
			<-start
			for k := range 5 {
				rq := requests[(i+k)%len(requests)]
				r := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
				r.Header.Set("Authorization", "Bearer any")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code >= 300 {
					errs <- rq.method + " " + rq.path + ": " + w.Body.String()
					return
				}
				mu.Lock()
				peak = max(peak, s.db.Stats().OpenConnections)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	st := s.db.Stats()
	if peak > bound || st.OpenConnections > bound {
		t.Errorf("open connections: peak %d, after %d; want at most %d", peak, st.OpenConnections, bound)
	}
	if st.WaitCount == 0 {
		t.Errorf("no request waited for a connection: %d clients did not exceed the pool of %d", clients, bound)
	}
	if list, err := s.ListBooks(ctx); err != nil || len(list) != clients*5/len(requests) {
		t.Errorf("%d books (%v), want one per POST /books", len(list), err)
	}
}

func TestNewStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "books.db")
	opened, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opened.CreateBook(ctx, Book{Author: "A", Title: "Kept", Pages: 1}); err != nil {
		t.Fatal(err)
	}
	opened.Close()

	// A database opened elsewhere, with the driver's defaults.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(ctx, db)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	defer s.Close()
	if list, err := s.ListBooks(ctx); err != nil || len(list) != 1 || list[0].Title != "Kept" {
		t.Errorf("ListBooks through NewStore = %+v, %v", list, err)
	}
	if _, err := NewStore(ctx, nil); err == nil {
		t.Error("NewStore(nil) succeeded")
	}
	closed, _ := sql.Open("sqlite", ":memory:")
	closed.Close()
	if _, err := NewStore(ctx, closed); err == nil {
		t.Error("NewStore on a closed database succeeded")
	}
}
