package books

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Store keeps books and articles. The handlers need nothing else of a
// database; SQLiteStore and PostgresStore implement it, and bookstest.Run
// checks an implementation against every promise below.
//
// A Store is safe for concurrent use, and several Stores (processes,
// replicas) may share one database.
//
// A Store does not validate what it stores: the HTTP layer does. It keeps
// any value it is given, with one exception: text containing NUL is
// refused with an error, because PostgreSQL cannot store it (the HTTP layer
// refuses it first). Every failure not documented below, a lost
// connection, a read-only or broken database, a canceled ctx (wrapped, so
// that errors.Is finds ctx.Err()), is an error that is none of the
// sentinels, which the handlers answer with a 500 that reveals nothing.
// A failed write changes nothing.
type Store interface {
	// ListBooks returns every book in ascending id order, an empty,
	// non-nil slice when there are none.
	ListBooks(ctx context.Context) ([]Book, error)
	// Book returns the book with the given id, or ErrNotFound.
	Book(ctx context.Context, id int64) (Book, error)
	// CreateBook stores b under a new id, ignoring b.ID, and returns it
	// with that id. Ids are positive, start at 1 on a new database, are
	// distinct under any concurrency, grow (a book created after another
	// was returned has a greater id) and are never reused, not even after
	// a delete, so that a stale client's PUT or DELETE cannot reach a book
	// it never saw.
	CreateBook(ctx context.Context, b Book) (Book, error)
	// UpdateBook replaces every field of the book with id b.ID and returns
	// b, or ErrNotFound when there is no such book (it creates none).
	UpdateBook(ctx context.Context, b Book) (Book, error)
	// DeleteBook removes the book with the given id, or returns
	// ErrNotFound.
	DeleteBook(ctx context.Context, id int64) error
	// ListArticles returns the articles owned by owner (a token subject),
	// in ascending id order, an empty, non-nil slice when there are none.
	// It never returns another owner's.
	ListArticles(ctx context.Context, owner string) ([]Article, error)
	// CreateArticle stores a as owned by owner, ignoring a.ID and
	// a.CreatedAt, and returns it with its new id and its creation time,
	// read from the store's clock once, in UTC, to the whole second.
	// a.Author is stored as given. Article ids follow the rules of book
	// ids.
	CreateArticle(ctx context.Context, owner string, a Article) (Article, error)
	// SeedDemo adds the tutorials' three books when there are no books,
	// and does nothing otherwise, so it is safe to call at every start:
	// concurrent calls, from any number of Stores on one database, seed
	// once.
	SeedDemo(ctx context.Context) error
	// Ping is the readiness check: nil only if the database answers and
	// can be written. It is cheap enough to call every second.
	Ping(ctx context.Context) error
	// Close releases the database. It may be called more than once; every
	// other method fails with an error afterwards.
	Close() error
}

var (
	_ Store = (*SQLiteStore)(nil)
	_ Store = (*PostgresStore)(nil)
)

// ErrNotFound is returned by Book, UpdateBook and DeleteBook when no book
// has the given id.
var ErrNotFound = errors.New("books: not found")

// ErrSchemaTooNew is returned by Open, OpenSQLite, NewSQLiteStore and
// OpenPostgres when the database was migrated by a newer build, which
// this one must not write to. Upgrade the binary, or restore a backup
// taken before the newer version ran.
var ErrSchemaTooNew = errors.New("books: database schema is newer than this build knows")

// schemaTooNew keeps the opener's message (which versions) and lets
// errors.Is find ErrSchemaTooNew beside the opener's own sentinel.
type schemaTooNew struct{ err error }

func (e schemaTooNew) Error() string   { return e.err.Error() }
func (e schemaTooNew) Unwrap() []error { return []error{ErrSchemaTooNew, e.err} }

// Open opens the store url names, in the forms of
// LATCHKEY_BOOKS_DATABASE_URL: "postgres://..." or "postgresql://..."
// opens OpenPostgres with the pool parameters the URL carries, and
// "sqlite:PATH", or a plain path (":memory:" included), opens OpenSQLite.
// Any other "scheme://" is refused rather than taken for a file name.
func Open(ctx context.Context, url string) (Store, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s, err := OpenPostgres(ctx, PostgresConfig{URL: url})
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return s, nil
	case strings.HasPrefix(url, "sqlite:"):
		url = strings.TrimPrefix(url, "sqlite:")
	case strings.Contains(url, "://"):
		scheme, _, _ := strings.Cut(url, "://")
		return nil, fmt.Errorf("books: open: unsupported database URL scheme %q: want postgres:// or sqlite:PATH", scheme)
	}
	s, err := OpenSQLite(ctx, url)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// errNUL is the refusal of text PostgreSQL cannot store.
var errNUL = errors.New("text contains a NUL character")

// checkText refuses text with NUL, on every backend alike.
func checkText(fields ...string) error {
	for _, f := range fields {
		if strings.IndexByte(f, 0) >= 0 {
			return errNUL
		}
	}
	return nil
}

// bookColumns are the columns of a Book, in scan order, on every backend.
const bookColumns = `id, author, country, language, pages, title, year`

// demoBooks are the three books of the tutorials this project grew from.
var demoBooks = []Book{
	{Author: "Chinua Achebe", Country: "Nigeria", Language: "English", Pages: 209, Title: "Things Fall Apart", Year: 1958},
	{Author: "Hans Christian Andersen", Country: "Denmark", Language: "Danish", Pages: 784, Title: "Fairy tales", Year: 1836},
	{Author: "Dante Alighieri", Country: "Italy", Language: "Italian", Pages: 928, Title: "The Divine Comedy", Year: 1315},
}
