package books_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey/books"
	"github.com/latchkey-dev/latchkey/books/bookstest"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
	"github.com/latchkey-dev/latchkey/token"
)

// TestSQLiteStore runs the conformance suite on a file and in memory.
func TestSQLiteStore(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		bookstest.Run(t, func(t *testing.T) bookstest.OpenFunc {
			path := filepath.Join(t.TempDir(), "data", "books.db")
			return func(t *testing.T) books.Store { return mustOpenSQLite(t, path) }
		})
	})
	t.Run("memory", func(t *testing.T) {
		bookstest.Run(t, func(t *testing.T) bookstest.OpenFunc {
			opened := false
			return func(t *testing.T) books.Store {
				if opened {
					t.Skip("a :memory: database is gone with its store; it cannot be opened twice")
				}
				opened = true
				return mustOpenSQLite(t, ":memory:")
			}
		})
	})
}

// TestPostgresStore runs the conformance suite, each subtest in a schema
// of its own.
func TestPostgresStore(t *testing.T) {
	pgdbtest.URL(t) // skip once, not in every subtest
	bookstest.Run(t, func(t *testing.T) bookstest.OpenFunc {
		cfg := books.PostgresConfig{URL: pgdbtest.URL(t), Schema: pgdbtest.Schema(t)}
		return func(t *testing.T) books.Store { return mustOpenPostgres(t, cfg) }
	})
}

func mustOpenSQLite(tb testing.TB, path string) *books.SQLiteStore {
	tb.Helper()
	s, err := books.OpenSQLite(tb.Context(), path)
	if err != nil {
		tb.Fatalf("OpenSQLite(%q): %v", path, err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func mustOpenPostgres(tb testing.TB, cfg books.PostgresConfig) *books.PostgresStore {
	tb.Helper()
	s, err := books.OpenPostgres(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("OpenPostgres: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newCreatedPGSchema is newPGSchema, created: a URL's search_path must
// name a schema that exists.
func newCreatedPGSchema(tb testing.TB) string {
	tb.Helper()
	schema := pgdbtest.Schema(tb)
	if _, err := pgdbtest.Admin(tb, pgdbtest.URL(tb)).Exec(tb.Context(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	return schema
}

// pgSessions counts the server sessions named app.
func pgSessions(tb testing.TB, admin *pgx.Conn, app string) int {
	tb.Helper()
	var n int
	if err := admin.QueryRow(tb.Context(),
		`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
		tb.Fatalf("count sessions: %v", err)
	}
	return n
}

// pgTerminate ends the server sessions named app and returns how many.
func pgTerminate(tb testing.TB, admin *pgx.Conn, app string) int {
	tb.Helper()
	var n int
	if err := admin.QueryRow(tb.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND application_name = $1`, app).Scan(&n); err != nil {
		tb.Fatalf("terminate: %v", err)
	}
	return n
}

// TestCreateArticleUsesNow: CreatedAt is the store's clock, read once, in
// UTC, truncated to the second, on each backend.
func TestCreateArticleUsesNow(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 890, time.FixedZone("X", 3600))
	backends := []struct {
		name string
		open func(t *testing.T) books.Store
	}{
		{"sqlite", func(t *testing.T) books.Store {
			s := mustOpenSQLite(t, ":memory:")
			s.Now = func() time.Time { return now }
			return s
		}},
		{"postgres", func(t *testing.T) books.Store {
			s := mustOpenPostgres(t, books.PostgresConfig{URL: pgdbtest.URL(t), Schema: pgdbtest.Schema(t)})
			s.Now = func() time.Time { return now }
			return s
		}},
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			s := be.open(t)
			a, err := s.CreateArticle(t.Context(), "u1", books.Article{ID: 7, Title: "t", Body: "b", Author: "anna", CreatedAt: time.Unix(0, 0)})
			if err != nil {
				t.Fatalf("CreateArticle: %v", err)
			}
			want := now.UTC().Truncate(time.Second)
			if !a.CreatedAt.Equal(want) || a.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt = %v, want %v in UTC", a.CreatedAt, want)
			}
			if list, err := s.ListArticles(t.Context(), "u1"); err != nil || len(list) != 1 || list[0] != a {
				t.Errorf("ListArticles(u1) = %+v, %v; want [%+v]", list, err, a)
			}
		})
	}
}

// TestOpen: the URL forms of LATCHKEY_BOOKS_DATABASE_URL choose the
// backend; anything else is refused, with no typed nil inside the Store.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		url      func(t *testing.T) string
		postgres bool
		wantErr  string // "" for success
	}{
		{"sqlite: URL", func(*testing.T) string { return "sqlite:" + filepath.Join(dir, "a.db") }, false, ""},
		{"plain path", func(*testing.T) string { return filepath.Join(dir, "b.db") }, false, ""},
		{"memory", func(*testing.T) string { return ":memory:" }, false, ""},
		{"postgres://", func(t *testing.T) string {
			return pgdbtest.WithParams(t, pgdbtest.URL(t), "search_path", newCreatedPGSchema(t))
		}, true, ""},
		{"postgresql://", func(t *testing.T) string {
			return strings.Replace(pgdbtest.WithParams(t, pgdbtest.URL(t), "search_path", newCreatedPGSchema(t)), "postgres://", "postgresql://", 1)
		}, true, ""},
		{"empty", func(*testing.T) string { return "" }, false, "empty path"},
		{"sqlite: without a path", func(*testing.T) string { return "sqlite:" }, false, "empty path"},
		{"unknown scheme", func(*testing.T) string { return "mysql://u:s3cret@db/books" }, false, `"mysql"`},
		{"unreachable postgres", func(*testing.T) string { return "postgres://u:s3cret@127.0.0.1:1/books?sslmode=disable" }, true, "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := books.Open(t.Context(), tc.url(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want an error saying %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("Open error reveals the password: %v", err)
				}
				if s != nil {
					t.Errorf("Open returned a non-nil Store %#v with its error", s)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if _, isPG := s.(*books.PostgresStore); isPG != tc.postgres {
				t.Errorf("Open returned %T", s)
			}
			if _, err := s.CreateBook(t.Context(), books.Book{Author: "A", Title: "T", Pages: 1}); err != nil {
				t.Errorf("CreateBook: %v", err)
			}
		})
	}
}

// claimsVerifier accepts any token as the claims it holds.
type claimsVerifier struct{ claims *token.Claims }

func (v claimsVerifier) Verify(context.Context, string) (*token.Claims, error) { return v.claims, nil }

// newHandler returns the books server on s, every token taken for an admin's.
func newHandler(tb testing.TB, s books.Store) http.Handler {
	tb.Helper()
	h, err := books.New(books.Config{Store: s, Verifier: claimsVerifier{&token.Claims{Subject: "1", Username: "john", Role: "admin"}}})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// serve sends one request through h and returns the status and body.
func serve(h http.Handler, method, path, body string) (int, string) {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer any")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

const testBook = `{"author":"Ngũgĩ wa Thiong'o","country":"Kenya","language":"Gĩkũyũ","pages":300,"title":"Devil on the Cross","year":1980}`

// checkOpaque500 fails unless the answer is the contract's 500, which
// says nothing of the cause.
func checkOpaque500(tb testing.TB, what string, status int, body string) {
	tb.Helper()
	if status != http.StatusInternalServerError {
		tb.Errorf("%s: status %d, want 500; body %s", what, status, body)
	}
	for _, leak := range []string{"terminat", "SQLSTATE", "postgres", "pgx", "connection", "books:"} {
		if strings.Contains(strings.ToLower(body), strings.ToLower(leak)) {
			tb.Errorf("%s: the body reveals %q: %s", what, leak, body)
		}
	}
}

// TestPostgresPoolStaysBounded sends a burst of many more concurrent
// requests than the pool holds, reads and writes, through the handler:
// the server never sees more sessions of the store than the bound, and
// once the burst is over the pool gives the idle ones back.
func TestPostgresPoolStaysBounded(t *testing.T) {
	const bound = 4
	app := pgdbtest.Name("books_test_app_")
	s := mustOpenPostgres(t, books.PostgresConfig{
		URL: pgdbtest.WithParams(t, pgdbtest.URL(t), "application_name", app), Schema: pgdbtest.Schema(t),
		MaxConns: bound, MinConns: 1, MaxConnIdleTime: 500 * time.Millisecond, HealthCheckPeriod: 100 * time.Millisecond,
	})
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	h := newHandler(t, s)
	requests := []struct{ method, path, body string }{
		{"GET", "/books", ""},
		{"POST", "/books", testBook},
		{"GET", "/articles", ""},
		{"POST", "/articles", `{"title":"t","body":"b"}`},
	}
	// The server's view, polled while the burst runs, on a connection of
	// the poller's own (a *pgx.Conn serves one caller at a time).
	poller := pgdbtest.Admin(t, pgdbtest.URL(t))
	var peak int
	var pollErr error
	stopPoll, polled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		for {
			var n int
			if err := poller.QueryRow(context.Background(),
				`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
				pollErr = err
				return
			}
			peak = max(peak, n)
			select {
			case <-stopPoll:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	const clients = 64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan string, clients)
	for i := range clients {
		wg.Go(func() {
			<-start
			for k := range 10 {
				rq := requests[(i+k)%len(requests)]
				if status, body := serve(h, rq.method, rq.path, rq.body); status >= 300 {
					errs <- rq.method + " " + rq.path + ": " + body
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(stopPoll)
	<-polled
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if pollErr != nil {
		t.Fatalf("poll pg_stat_activity: %v", pollErr)
	}
	if peak > bound || peak < 2 {
		t.Errorf("server sessions of the store during the burst: peak %d, want between 2 and %d", peak, bound)
	}
	if list, err := s.ListBooks(t.Context()); err != nil || len(list) != clients*10/len(requests) {
		t.Errorf("%d books (%v), want one per POST /books", len(list), err)
	}
	err := pgdbtest.Eventually(10*time.Second, func() error {
		if n := pgSessions(t, admin, app); n > 1 {
			return errors.New("idle connections still open after the burst")
		}
		return nil
	})
	if err != nil {
		t.Errorf("%v: %d sessions, want MinConns 1", err, pgSessions(t, admin, app))
	}
}

// TestPostgresConnectionLost: the server's sessions are ended (as by a
// database restart or failover) while a request waits on a lock, then the
// database refuses connections for a while. The request in flight fails
// with a 500 that reveals nothing and writes nothing, /readyz answers 503
// while the database is gone, and the same handler serves again once it is
// back, without being reopened.
func TestPostgresConnectionLost(t *testing.T) {
	name, dbURL := pgdbtest.Database(t)
	app := pgdbtest.Name("books_test_app_")
	s := mustOpenPostgres(t, books.PostgresConfig{URL: pgdbtest.WithParams(t, dbURL, "application_name", app), MaxConns: 4})
	if err := s.SeedDemo(t.Context()); err != nil {
		t.Fatal(err)
	}
	h := newHandler(t, s)
	if status, body := serve(h, "PUT", "/books/1", testBook); status != http.StatusOK {
		t.Fatalf("PUT /books/1: %d %s", status, body)
	}

	// Hold book 1's row lock, so that a PUT is in flight on the server
	// when its connection dies.
	locker := pgdbtest.Admin(t, dbURL)
	lock, err := locker.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(context.Background())
	if _, err := lock.Exec(t.Context(), `SELECT 1 FROM books WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		status int
		body   string
	}
	inFlight := make(chan answer, 1)
	go func() {
		status, body := serve(h, "PUT", "/books/1", `{"author":"Changed","pages":1,"title":"Changed","year":1}`)
		inFlight <- answer{status, body}
	}()
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	err = pgdbtest.Eventually(10*time.Second, func() error {
		var waiting bool
		if err := admin.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock')`, app).Scan(&waiting); err != nil {
			return err
		}
		if !waiting {
			return errors.New("the PUT is not waiting for the lock")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := pgTerminate(t, admin, app); n == 0 {
		t.Fatal("no server session of the store to terminate")
	}
	select {
	case a := <-inFlight:
		checkOpaque500(t, "the PUT in flight", a.status, a.body)
	case <-time.After(10 * time.Second):
		t.Fatal("the PUT still runs 10s after its connection was terminated")
	}
	if err := lock.Rollback(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The database goes away for a while.
	if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	pgTerminate(t, admin, app)
	for _, rq := range []struct{ method, path, body string }{
		{"GET", "/books", ""}, {"POST", "/books", testBook}, {"GET", "/articles", ""},
	} {
		status, body := serve(h, rq.method, rq.path, rq.body)
		checkOpaque500(t, rq.method+" "+rq.path+" while the database is gone", status, body)
	}
	if status, body := serve(h, "GET", "/readyz", ""); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the database is gone: %d %s, want 503", status, body)
	}

	if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	err = pgdbtest.Eventually(10*time.Second, func() error {
		if status, body := serve(h, "GET", "/readyz", ""); status != http.StatusOK {
			return errors.New(body)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("/readyz after the database is back: %v", err)
	}
	if status, body := serve(h, "POST", "/books", testBook); status != http.StatusCreated {
		t.Errorf("POST /books after recovery: %d %s", status, body)
	}
	// Nothing half-written: the PUT that died changed nothing.
	if b, err := s.Book(t.Context(), 1); err != nil || b.Title != "Devil on the Cross" {
		t.Errorf("book 1 = %+v, %v; want the earlier PUT's, untouched by the one that died", b, err)
	}
}

// TestPostgresReadOnly: a database whose sessions start read-only is not
// ready, refuses writes with a 500 that reveals nothing, and once it is
// writable again writes succeed at once: the connections opened read-only
// leave the pool.
func TestPostgresReadOnly(t *testing.T) {
	name, dbURL := pgdbtest.Database(t)
	app := pgdbtest.Name("books_test_app_")
	s := mustOpenPostgres(t, books.PostgresConfig{URL: pgdbtest.WithParams(t, dbURL, "application_name", app), MaxConns: 4})
	h := newHandler(t, s)
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+name+` SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	pgTerminate(t, admin, app) // new sessions start read-only
	err := pgdbtest.Eventually(10*time.Second, func() error {
		if status, _ := serve(h, "GET", "/readyz", ""); status != http.StatusServiceUnavailable {
			return errors.New("/readyz is not 503 on a read-only database")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	status, body := serve(h, "POST", "/books", testBook)
	checkOpaque500(t, "POST /books on a read-only database", status, body)
	if status, body := serve(h, "GET", "/books", ""); status != http.StatusOK {
		t.Errorf("GET /books on a read-only database: %d %s", status, body)
	}

	if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+name+` RESET default_transaction_read_only`); err != nil {
		t.Fatal(err)
	}
	// /readyz, polled as a load balancer would, drops the read-only
	// connections once it sees the database writable... or the first write
	// does; either way within a second, at most one write failing.
	failures := 0
	err = pgdbtest.Eventually(time.Second, func() error {
		if status, body := serve(h, "POST", "/books", testBook); status != http.StatusCreated {
			failures++
			return errors.New(body)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("POST /books still fails a second after the database is writable: %v", err)
	}
	if failures > 1 {
		t.Errorf("%d writes failed after the database became writable, want at most 1", failures)
	}
	for range 12 {
		if status, body := serve(h, "POST", "/books", testBook); status != http.StatusCreated {
			t.Fatalf("a read-only connection stayed in the pool: %d %s", status, body)
		}
	}
	if status, body := serve(h, "GET", "/readyz", ""); status != http.StatusOK {
		t.Errorf("/readyz on a writable database: %d %s", status, body)
	}
}

// TestPostgresSchemaTooNew: a schema a newer build migrated is refused
// with ErrSchemaTooNew, naming the versions, before anything is written.
func TestPostgresSchemaTooNew(t *testing.T) {
	cfg := books.PostgresConfig{URL: pgdbtest.URL(t), Schema: pgdbtest.Schema(t)}
	mustOpenPostgres(t, cfg).Close()
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	if _, err := admin.Exec(t.Context(), `INSERT INTO `+pgx.Identifier{cfg.Schema, "books_schema_migrations"}.Sanitize()+
		` (version, name) VALUES (99, '0099_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	s, err := books.OpenPostgres(t.Context(), cfg)
	if err == nil {
		s.Close()
		t.Fatal("OpenPostgres opened a schema from a newer build")
	}
	if !errors.Is(err, books.ErrSchemaTooNew) || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("OpenPostgres = %v, want ErrSchemaTooNew naming version 99", err)
	}
}

// TestPostgresBesideTheAuthStore: LATCHKEY_BOOKS_DATABASE_URL may name the
// auth server's database and schema. The books store keeps its migration
// records apart, so that the auth store's (here at a version the books
// store has never had) neither stop it nor are touched.
func TestPostgresBesideTheAuthStore(t *testing.T) {
	schema := pgdbtest.Schema(t)
	admin := pgdbtest.Admin(t, pgdbtest.URL(t))
	for _, q := range []string{
		`CREATE SCHEMA ` + pgx.Identifier{schema}.Sanitize(),
		`CREATE TABLE ` + pgx.Identifier{schema, "schema_migrations"}.Sanitize() + ` (version integer PRIMARY KEY, name text NOT NULL)`,
		`INSERT INTO ` + pgx.Identifier{schema, "schema_migrations"}.Sanitize() + ` VALUES (1, '0001_init.sql'), (7, '0007_auth_only.sql')`,
	} {
		if _, err := admin.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	s := mustOpenPostgres(t, books.PostgresConfig{URL: pgdbtest.URL(t), Schema: schema})
	if _, err := s.CreateBook(t.Context(), books.Book{Author: "A", Title: "T", Pages: 1}); err != nil {
		t.Fatalf("CreateBook beside the auth store's tables: %v", err)
	}
	var auth int
	if err := admin.QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&auth); err != nil || auth != 2 {
		t.Errorf("the auth store's schema_migrations has %d rows (%v), want its 2", auth, err)
	}
}
