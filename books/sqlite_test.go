package books

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/latchkey-dev/latchkey/internal/sqlitedb"
	"github.com/latchkey-dev/latchkey/internal/sqlitedb/sqlitedbtest"
	"github.com/latchkey-dev/latchkey/token"
)

// The behaviour every Store shares is checked by bookstest, run from
// store_test.go; this file holds what is SQLite's own.

// TestSQLiteFiles: a new database file and its directory get private
// modes, and a reopen runs no migration twice.
func TestSQLiteFiles(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "books.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
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
	embedded, err := fs.Glob(sqliteMigrations, "migrations/sqlite/*.sql")
	if err != nil || len(embedded) < 2 {
		t.Fatalf("embedded migrations %v (%v), want at least 2", embedded, err)
	}
	s, err = OpenSQLite(ctx, path) // migrations must not run twice
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(embedded) {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, len(embedded))
	}
}

func TestOpenSQLiteRejectsEmptyPath(t *testing.T) {
	if _, err := OpenSQLite(context.Background(), ""); err == nil {
		t.Error("OpenSQLite(\"\") succeeded")
	}
}

// TestSQLiteIDsMigration: a database written before 0002 keeps its books,
// every field, and from then on a deleted id is not handed out again.
func TestSQLiteIDsMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	first, err := fs.ReadFile(sqliteMigrations, "migrations/sqlite/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	old, err := sqlitedb.Open(ctx, sqlitedb.Config{Path: path, Migrations: fstest.MapFS{"0001_init.sql": {Data: first}}})
	if err != nil {
		t.Fatal(err)
	}
	var before []Book
	for _, b := range demoBooks {
		if err := old.QueryRowContext(ctx, `INSERT INTO books (author, country, language, pages, title, year)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year).Scan(&b.ID); err != nil {
			t.Fatal(err)
		}
		before = append(before, b)
	}
	old.Close()

	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatalf("OpenSQLite on a database before 0002: %v", err)
	}
	defer s.Close()
	list, err := s.ListBooks(ctx)
	if err != nil || len(list) != len(before) {
		t.Fatalf("ListBooks after 0002 = %+v, %v; want %+v", list, err, before)
	}
	for i := range before {
		if list[i] != before[i] {
			t.Errorf("book %d after 0002 = %+v, want %+v", i, list[i], before[i])
		}
	}
	if err := s.DeleteBook(ctx, before[2].ID); err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateBook(ctx, Book{Author: "A", Title: "T", Pages: 1})
	if err != nil || b.ID != before[2].ID+1 {
		t.Errorf("CreateBook after deleting the newest = id %d (%v), want %d", b.ID, err, before[2].ID+1)
	}
}

// TestSQLiteSchemaTooNew: a database a newer build migrated is refused
// with ErrSchemaTooNew.
func TestSQLiteSchemaTooNew(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_from_the_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := OpenSQLite(ctx, path); err == nil {
		s.Close()
		t.Fatal("OpenSQLite opened a schema from a newer build")
	} else if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("OpenSQLite = %v, want ErrSchemaTooNew naming version 99", err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := NewSQLiteStore(ctx, db); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("NewSQLiteStore = %v, want ErrSchemaTooNew", err)
	}
}

// TestSQLiteFilesTurnReadOnly: the database file turns read-only under the
// running server (permissions, a remount; see sqlitedbtest.ReadOnly for
// how, as root too) after its idle connections have gone, and a burst of
// reads fills the pool with connections opened read-only. Meanwhile GET
// /books works, book writes fail with a 500 that reveals nothing, and
// /readyz answers 503. Once the file is writable again, every write
// succeeds within a second, without a restart, and /readyz answers 200.
func TestSQLiteFilesTurnReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "books.db")
	s, err := OpenSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := New(Config{Store: s, Verifier: fixedVerifier{&token.Claims{Subject: "1", Username: "john", Role: "admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer any")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("POST", "/books", validBook); w.Code != http.StatusCreated {
		t.Fatalf("POST /books: %d %s", w.Code, w.Body)
	}

	restore := sqlitedbtest.ReadOnly(t, path)
	sqlitedbtest.Reconnect(s.db, sqlitedb.PoolSize())
	sqlitedbtest.FillPool(t, s.db, sqlitedb.PoolSize())
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/books", validBook}, {"PUT", "/books/1", validBook}, {"DELETE", "/books/1", ""}, {"POST", "/articles", `{"title":"t","body":"b"}`},
	} {
		w := do(rq.method, rq.path, rq.body)
		e := mustErrorBody(t, w, http.StatusInternalServerError, "server_error")
		if strings.Contains(strings.ToLower(e.Description), "readonly") || strings.Contains(e.Description, "sqlite") {
			t.Errorf("%s %s: the 500 reveals its cause: %q", rq.method, rq.path, e.Description)
		}
	}
	if w := do("GET", "/readyz", ""); w.Code != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a read-only database: %d %s, want 503", w.Code, w.Body)
	}
	if w := do("GET", "/books", ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Devil on the Cross") {
		t.Errorf("GET /books on a read-only database: %d %s", w.Code, w.Body)
	}

	restore()
	start := time.Now()
	if w := do("POST", "/books", validBook); w.Code != http.StatusCreated {
		t.Fatalf("the first POST /books after the file is writable again: %d %s", w.Code, w.Body)
	}
	var wg sync.WaitGroup
	for range 3 * sqlitedb.PoolSize() {
		wg.Go(func() {
			if w := do("POST", "/books", validBook); w.Code != http.StatusCreated {
				t.Errorf("POST /books after recovery: a read-only connection stayed in the pool: %d %s", w.Code, w.Body)
			}
		})
	}
	wg.Wait()
	if w := do("GET", "/readyz", ""); w.Code != http.StatusOK {
		t.Errorf("/readyz after recovery: %d %s", w.Code, w.Body)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("recovery took %v, want under a second", d)
	}
}

// TestPoolStaysBounded sends a burst of many more concurrent requests
// than the store's pool holds, reads and writes, through the handler: they
// queue for connections rather than open more (each one is open files),
// and the burst leaves no more open than the bound.
func TestPoolStaysBounded(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "books.db"))
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
	// Every connection is taken while the callers start, so they queue
	// for the pool: what follows tests the bound under real contention.
	release := sqlitedbtest.HoldPool(t, s.db, bound)
	close(start)
	time.Sleep(50 * time.Millisecond)
	release()
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

func TestNewSQLiteStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "books.db")
	opened, err := OpenSQLite(ctx, path)
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
	s, err := NewSQLiteStore(ctx, db)
	if err != nil {
		t.Fatalf("NewSQLiteStore: %v", err)
	}
	defer s.Close()
	if list, err := s.ListBooks(ctx); err != nil || len(list) != 1 || list[0].Title != "Kept" {
		t.Errorf("ListBooks through NewSQLiteStore = %+v, %v", list, err)
	}
	if _, err := NewSQLiteStore(ctx, nil); err == nil {
		t.Error("NewSQLiteStore(nil) succeeded")
	}
	closed, _ := sql.Open("sqlite", ":memory:")
	closed.Close()
	if _, err := NewSQLiteStore(ctx, closed); err == nil {
		t.Error("NewSQLiteStore on a closed database succeeded")
	}
}
