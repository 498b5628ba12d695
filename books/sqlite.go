package books

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/latchkey-dev/latchkey/internal/sqlitedb"
)

//go:embed migrations/sqlite/*.sql
var sqliteMigrations embed.FS

// busyTimeout is how long a connection waits for another writer before
// SQLite reports SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// SQLiteStore is the Store on a SQLite database, the default: a file of
// its own beside the auth server's, or ":memory:" for tests.
//
// Its queries are prepared once (see statements), and its pool is bounded
// (sqlitedb.PoolSize connections, idle ones closed after a minute).
type SQLiteStore struct {
	db *sql.DB
	st statements
	// listCache answers ListBooks and, encoded, GET /books (jsonLister).
	*listCache

	// Now returns the current time. It defaults to time.Now; tests replace
	// it. It is read once per operation.
	Now func() time.Time
}

// statements are the store's queries, prepared once: SQLite otherwise
// compiles the SQL on every call, which measured a sixth of the CPU time of
// GET /books. database/sql prepares each again on every pooled connection
// the first time it runs there.
type statements struct {
	listBooks, booksVersion, book, createBook, updateBook, deleteBook *sql.Stmt
	listArticles, createArticle                                       *sql.Stmt
}

func prepare(ctx context.Context, db *sql.DB) (statements, error) {
	var st statements
	for _, q := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&st.listBooks, `SELECT ` + bookColumns + ` FROM books ORDER BY id`},
		{&st.booksVersion, `SELECT n FROM books_version WHERE id = 1`},
		{&st.book, `SELECT ` + bookColumns + ` FROM books WHERE id = $1`},
		{&st.createBook, `INSERT INTO books (author, country, language, pages, title, year)
		 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`},
		{&st.updateBook, `UPDATE books SET author = $1, country = $2, language = $3, pages = $4, title = $5, year = $6
		 WHERE id = $7`},
		{&st.deleteBook, `DELETE FROM books WHERE id = $1`},
		{&st.listArticles, `SELECT id, title, body, author, created_at FROM articles WHERE owner = $1 ORDER BY id`},
		{&st.createArticle, `INSERT INTO articles (owner, title, body, author, created_at)
		 VALUES ($1, $2, $3, $4, $5) RETURNING id`},
	} {
		stmt, err := db.PrepareContext(ctx, q.query)
		if err != nil {
			st.close()
			return statements{}, err
		}
		*q.stmt = stmt
	}
	return st, nil
}

// close closes the statements prepared so far, for a prepare that failed
// half-way on a database its caller keeps.
func (st *statements) close() {
	for _, stmt := range []*sql.Stmt{st.listBooks, st.booksVersion, st.book, st.createBook, st.updateBook, st.deleteBook, st.listArticles, st.createArticle} {
		if stmt != nil {
			stmt.Close()
		}
	}
}

// OpenSQLite opens (creating if needed) the SQLite database at path, a
// file path or ":memory:", and brings its schema up to date; a schema newer
// than this build is refused with ErrSchemaTooNew.
//
// A new database file is created with mode 0600, and a missing parent
// directory with 0700: the books are not secret, but the article bodies
// are the users'. The database runs in WAL mode with a busy timeout, so
// readers do not block the writer, with foreign keys on, and with
// synchronous=NORMAL: a power cut may lose the last books written, not
// corrupt the file. Transactions take the write lock when they begin, so
// two writers never deadlock on a lock upgrade. The pool holds at most a
// few connections (sqlitedb.PoolSize), and closes those idle for a minute.
// A connection that reports the file read-only, an I/O error or corruption
// leaves the pool, and one opened while the file could not be written
// leaves it as soon as the file can be, so that book writes work again the
// moment the file is writable, without a restart.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	migrations, err := fs.Sub(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		return nil, fmt.Errorf("books: open %q: %w", path, err)
	}
	db, err := sqlitedb.Open(ctx, sqlitedb.Config{
		Path:        path,
		Synchronous: sqlitedb.Normal,
		BusyTimeout: busyTimeout,
		Migrations:  migrations,
	})
	if err != nil {
		return nil, fmt.Errorf("books: open %q: %w", path, sqliteErr(err))
	}
	st, err := prepare(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("books: open %q: prepare: %w", path, err)
	}
	return newSQLiteStore(db, st), nil
}

func newSQLiteStore(db *sql.DB, st statements) *SQLiteStore {
	s := &SQLiteStore{db: db, st: st, Now: time.Now}
	s.listCache = newListCache(s.booksVersion, s.loadBooks)
	return s
}

// sqliteErr marks sqlitedb's refusal of a newer schema as ErrSchemaTooNew.
func sqliteErr(err error) error {
	if errors.Is(err, sqlitedb.ErrSchemaTooNew) {
		return schemaTooNew{err}
	}
	return err
}

// NewSQLiteStore returns a SQLiteStore on a SQLite database opened
// elsewhere, with another driver or other settings, and applies the
// migrations it has not yet recorded. Close closes db. On an error, db is
// left open.
//
// NewSQLiteStore is not New, which builds the HTTP handler.
func NewSQLiteStore(ctx context.Context, db *sql.DB) (*SQLiteStore, error) {
	if db == nil {
		return nil, errors.New("books: new: nil *sql.DB")
	}
	migrations, err := fs.Sub(sqliteMigrations, "migrations/sqlite")
	if err != nil {
		return nil, fmt.Errorf("books: migrate: %w", err)
	}
	if err := sqlitedb.Migrate(ctx, db, migrations); err != nil {
		return nil, fmt.Errorf("books: migrate: %w", sqliteErr(err))
	}
	st, err := prepare(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("books: prepare: %w", err)
	}
	return newSQLiteStore(db, st), nil
}

// Ping implements Store: it fails, with sqlitedb.ErrReadOnly, when the
// database answers but cannot be written. It takes no lock.
func (s *SQLiteStore) Ping(ctx context.Context) error {
	if err := sqlitedb.Ping(ctx, s.db); err != nil {
		return fmt.Errorf("books: ping: %w", err)
	}
	return nil
}

// Close implements Store. Closing the database closes the prepared
// statements on every connection too; the *sql.Stmt values are left, so
// that a call after Close fails with "database is closed", which says what
// happened, rather than "statement is closed".
func (s *SQLiteStore) Close() error {
	return s.db.Close()
}

// ListBooks implements Store. It answers from memory while the books'
// version count has not moved (see listCache): one single-row read per
// call instead of the whole table.
func (s *SQLiteStore) ListBooks(ctx context.Context) ([]Book, error) {
	return s.listCache.list(ctx)
}

// booksVersion reads the count every change to books moves. The read
// takes microseconds and never waits for a writer (WAL), so it runs
// without ctx's cancellation: with it, the driver and database/sql would
// start two goroutines per call to watch ctx, which cost as much as the
// read. listCache.get checks ctx before.
func (s *SQLiteStore) booksVersion(ctx context.Context) (int64, error) {
	var n int64
	err := s.st.booksVersion.QueryRowContext(context.WithoutCancel(ctx)).Scan(&n)
	return n, err
}

// loadBooks reads every book from the database.
func (s *SQLiteStore) loadBooks(ctx context.Context) ([]Book, error) {
	rows, err := s.st.listBooks.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("books: list books: %w", err)
	}
	defer rows.Close()
	list := []Book{}
	for rows.Next() {
		var b Book
		if err := scanBook(rows, &b); err != nil {
			return nil, fmt.Errorf("books: list books: %w", err)
		}
		list = append(list, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("books: list books: %w", err)
	}
	return list, nil
}

// Book implements Store.
func (s *SQLiteStore) Book(ctx context.Context, id int64) (Book, error) {
	var b Book
	err := scanBook(s.st.book.QueryRowContext(ctx, id), &b)
	if errors.Is(err, sql.ErrNoRows) {
		return Book{}, ErrNotFound
	}
	if err != nil {
		return Book{}, fmt.Errorf("books: book %d: %w", id, err)
	}
	return b, nil
}

// CreateBook implements Store.
func (s *SQLiteStore) CreateBook(ctx context.Context, b Book) (Book, error) {
	if err := checkText(b.Author, b.Country, b.Language, b.Title); err != nil {
		return Book{}, fmt.Errorf("books: create book: %w", err)
	}
	err := s.st.createBook.QueryRowContext(ctx,
		b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year).Scan(&b.ID)
	if err != nil {
		return Book{}, fmt.Errorf("books: create book: %w", err)
	}
	return b, nil
}

// UpdateBook implements Store.
func (s *SQLiteStore) UpdateBook(ctx context.Context, b Book) (Book, error) {
	if err := checkText(b.Author, b.Country, b.Language, b.Title); err != nil {
		return Book{}, fmt.Errorf("books: update book %d: %w", b.ID, err)
	}
	res, err := s.st.updateBook.ExecContext(ctx,
		b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year, b.ID)
	if err != nil {
		return Book{}, fmt.Errorf("books: update book %d: %w", b.ID, err)
	}
	if err := oneRow(res); err != nil {
		return Book{}, fmt.Errorf("books: update book %d: %w", b.ID, err)
	}
	return b, nil
}

// DeleteBook implements Store.
func (s *SQLiteStore) DeleteBook(ctx context.Context, id int64) error {
	res, err := s.st.deleteBook.ExecContext(ctx, id)
	if err != nil {
		return fmt.Errorf("books: delete book %d: %w", id, err)
	}
	if err := oneRow(res); err != nil {
		return fmt.Errorf("books: delete book %d: %w", id, err)
	}
	return nil
}

// oneRow turns "no row affected" into ErrNotFound.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanBook(row scanner, b *Book) error {
	return row.Scan(&b.ID, &b.Author, &b.Country, &b.Language, &b.Pages, &b.Title, &b.Year)
}

// ListArticles implements Store.
func (s *SQLiteStore) ListArticles(ctx context.Context, owner string) ([]Article, error) {
	if checkText(owner) != nil {
		return []Article{}, nil // CreateArticle stores no such owner
	}
	rows, err := s.st.listArticles.QueryContext(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("books: list articles: %w", err)
	}
	defer rows.Close()
	list := []Article{}
	for rows.Next() {
		var (
			a       Article
			created string
		)
		if err := rows.Scan(&a.ID, &a.Title, &a.Body, &a.Author, &created); err != nil {
			return nil, fmt.Errorf("books: list articles: %w", err)
		}
		if a.CreatedAt, err = time.Parse(time.RFC3339, created); err != nil {
			return nil, fmt.Errorf("books: list articles: article %d: %w", a.ID, err)
		}
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("books: list articles: %w", err)
	}
	return list, nil
}

// CreateArticle implements Store.
func (s *SQLiteStore) CreateArticle(ctx context.Context, owner string, a Article) (Article, error) {
	if err := checkText(owner, a.Title, a.Body, a.Author); err != nil {
		return Article{}, fmt.Errorf("books: create article: %w", err)
	}
	a.CreatedAt = s.Now().UTC().Truncate(time.Second)
	err := s.st.createArticle.QueryRowContext(ctx,
		owner, a.Title, a.Body, a.Author, a.CreatedAt.Format(time.RFC3339)).Scan(&a.ID)
	if err != nil {
		return Article{}, fmt.Errorf("books: create article: %w", err)
	}
	return a, nil
}

// SeedDemo implements Store. The count and the inserts are one
// transaction, which takes the write lock as it begins (IMMEDIATE), so
// that seeds from other processes queue behind it and find the books.
func (s *SQLiteStore) SeedDemo(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("books: seed: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM books`).Scan(&n); err != nil {
		return fmt.Errorf("books: seed: %w", err)
	}
	if n > 0 {
		return nil
	}
	for _, b := range demoBooks {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO books (author, country, language, pages, title, year) VALUES ($1, $2, $3, $4, $5, $6)`,
			b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year); err != nil {
			return fmt.Errorf("books: seed: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("books: seed: %w", err)
	}
	return nil
}
