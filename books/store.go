package books

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// ErrNotFound is returned by Book, UpdateBook and DeleteBook when no book
// has the given id.
var ErrNotFound = errors.New("books: not found")

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a connection waits for another writer before
// SQLite reports SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store keeps books and articles in a SQL database. It is safe for
// concurrent use.
//
// The SQL is plain enough for SQLite and PostgreSQL alike ($n placeholders,
// RETURNING); only Open and the migrations are SQLite-specific.
type Store struct {
	db *sql.DB

	// Now returns the current time. It defaults to time.Now; tests replace
	// it. It is read once per operation.
	Now func() time.Time
}

// Open opens (creating if needed) the SQLite database at dsn, a file path or
// ":memory:", and brings its schema up to date.
//
// A new database file is created with mode 0600, and a missing parent
// directory with 0700: the books are not secret, but the article bodies
// are the users'. The database runs in WAL mode with a busy timeout, so
// readers do not block the writer, and with foreign keys on. Transactions
// take the write lock when they begin, so two writers never deadlock on a
// lock upgrade.
func Open(ctx context.Context, dsn string) (*Store, error) {
	if dsn == "" {
		return nil, errors.New("books: open: empty database path")
	}
	memory := dsn == ":memory:"
	if !memory {
		if err := createFile(dsn); err != nil {
			return nil, fmt.Errorf("books: open %s: %w", dsn, err)
		}
	}
	db, err := sql.Open("sqlite", sqliteDSN(dsn))
	if err != nil {
		return nil, fmt.Errorf("books: open %s: %w", dsn, err)
	}
	if memory {
		// Every connection to ":memory:" is a database of its own, so the
		// pool must hold exactly one, kept forever.
		db.SetMaxOpenConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
	}
	s, err := NewStore(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSN turns a path into the driver's DSN with the pragmas every
// connection needs. A file path goes in as a file: URI so that a '?' or
// '#' in it is part of the name, not the start of the parameters.
func sqliteDSN(path string) string {
	params := "_pragma=busy_timeout(" + strconv.FormatInt(busyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=foreign_keys(1)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)" +
		"&_txlock=immediate"
	if path == ":memory:" {
		return path + "?" + params
	}
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + params
}

// createFile makes sure path exists, creating its directory with 0700 and
// the file with 0600 when they are new. Existing ones keep their modes.
func createFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// NewStore returns a Store on an already open database and applies the
// migrations it has not yet recorded. Store.Close closes db.
//
// NewStore is the way in for another driver (it is not New, which builds
// the HTTP handler); the embedded migrations are SQLite's, so a PostgreSQL
// variant will need its own set.
func NewStore(ctx context.Context, db *sql.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("books: new: nil *sql.DB")
	}
	s := &Store{db: db, Now: time.Now}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// migrate applies each embedded migration that schema_migrations does not
// record, in order, each in its own transaction together with its record,
// so a failed migration leaves nothing behind. The check is repeated inside
// the transaction so that two processes starting together apply it once.
func (s *Store) migrate(ctx context.Context) error {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL
	)`
	if _, err := s.db.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("books: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("books: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		num, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("books: migrate %s: name must start with a number", base)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("books: migrate %s: %w", base, err)
		}
		if err := s.apply(ctx, version, base, string(body)); err != nil {
			return fmt.Errorf("books: migrate %s: %w", base, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, version int, name, body string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		version, name, s.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("books: ping: %w", err)
	}
	// PingContext may succeed on a pooled connection without touching the
	// file; a query proves the database is readable.
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("books: ping: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}

const bookColumns = `id, author, country, language, pages, title, year`

// ListBooks returns every book, in id order. It returns an empty, non-nil
// slice when there are none.
func (s *Store) ListBooks(ctx context.Context) ([]Book, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+bookColumns+` FROM books ORDER BY id`)
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

// Book returns the book with the given id, or ErrNotFound.
func (s *Store) Book(ctx context.Context, id int64) (Book, error) {
	var b Book
	err := scanBook(s.db.QueryRowContext(ctx, `SELECT `+bookColumns+` FROM books WHERE id = $1`, id), &b)
	if errors.Is(err, sql.ErrNoRows) {
		return Book{}, ErrNotFound
	}
	if err != nil {
		return Book{}, fmt.Errorf("books: book %d: %w", id, err)
	}
	return b, nil
}

// CreateBook stores b under a new id, ignoring b.ID, and returns it with
// that id. It does not validate b; the HTTP layer does.
func (s *Store) CreateBook(ctx context.Context, b Book) (Book, error) {
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO books (author, country, language, pages, title, year)
		 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year).Scan(&b.ID)
	if err != nil {
		return Book{}, fmt.Errorf("books: create book: %w", err)
	}
	return b, nil
}

// UpdateBook replaces every field of the book with id b.ID and returns it,
// or ErrNotFound when there is no such book.
func (s *Store) UpdateBook(ctx context.Context, b Book) (Book, error) {
	res, err := s.db.ExecContext(ctx,
		`UPDATE books SET author = $1, country = $2, language = $3, pages = $4, title = $5, year = $6
		 WHERE id = $7`,
		b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year, b.ID)
	if err != nil {
		return Book{}, fmt.Errorf("books: update book %d: %w", b.ID, err)
	}
	if err := oneRow(res); err != nil {
		return Book{}, fmt.Errorf("books: update book %d: %w", b.ID, err)
	}
	return b, nil
}

// DeleteBook removes the book with the given id, or returns ErrNotFound.
func (s *Store) DeleteBook(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM books WHERE id = $1`, id)
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

// ListArticles returns the articles owned by owner (a token subject), in
// id order. It returns an empty, non-nil slice when there are none.
func (s *Store) ListArticles(ctx context.Context, owner string) ([]Article, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, title, body, author, created_at FROM articles WHERE owner = $1 ORDER BY id`, owner)
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

// CreateArticle stores a as owned by owner, ignoring a.ID and a.CreatedAt,
// and returns it with its new id and its creation time (UTC, whole
// seconds). a.Author is stored as given.
func (s *Store) CreateArticle(ctx context.Context, owner string, a Article) (Article, error) {
	a.CreatedAt = s.Now().UTC().Truncate(time.Second)
	err := s.db.QueryRowContext(ctx,
		`INSERT INTO articles (owner, title, body, author, created_at)
		 VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		owner, a.Title, a.Body, a.Author, a.CreatedAt.Format(time.RFC3339)).Scan(&a.ID)
	if err != nil {
		return Article{}, fmt.Errorf("books: create article: %w", err)
	}
	return a, nil
}

// demoBooks are the three books of the tutorials this project grew from.
var demoBooks = []Book{
	{Author: "Chinua Achebe", Country: "Nigeria", Language: "English", Pages: 209, Title: "Things Fall Apart", Year: 1958},
	{Author: "Hans Christian Andersen", Country: "Denmark", Language: "Danish", Pages: 784, Title: "Fairy tales", Year: 1836},
	{Author: "Dante Alighieri", Country: "Italy", Language: "Italian", Pages: 928, Title: "The Divine Comedy", Year: 1315},
}

// SeedDemo adds the tutorials' three books when the books table is empty,
// and does nothing otherwise, so it is safe to call at every start. The
// check and the inserts are one transaction.
func (s *Store) SeedDemo(ctx context.Context) error {
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
