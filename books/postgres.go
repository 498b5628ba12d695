package books

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey/internal/pgdb"
)

//go:embed migrations/postgres/*.sql
var postgresMigrations embed.FS

// postgresMigrationsTable records the books migrations. It is not the auth
// store's schema_migrations, because LATCHKEY_BOOKS_DATABASE_URL may well
// name the auth server's database, and the two sets must not take each
// other's records for their own.
const postgresMigrationsTable = "books_schema_migrations"

// PostgresConfig says which PostgreSQL database OpenPostgres opens and how
// it pools connections. Zero fields take the URL's pool parameters, else
// the defaults in the package doc.
type PostgresConfig struct {
	// URL is a PostgreSQL connection string, postgres://user@host/db?...;
	// pgx's pool parameters in it (pool_max_conns, pool_min_conns,
	// pool_max_conn_idle_time, pool_health_check_period) apply unless the
	// field below is set. Required.
	URL string
	// Schema, if set, is the schema the tables live in, created if absent
	// and used as every connection's search_path. Tests give each run one
	// of its own. Empty: the URL's search_path decides (usually "public").
	Schema string
	// MaxConns bounds the pool. Zero: pool_max_conns, else 10.
	MaxConns int32
	// MinConns are kept open when idle. Zero: pool_min_conns, else 1;
	// negative: none.
	MinConns int32
	// MaxConnIdleTime closes connections idle for longer. Zero:
	// pool_max_conn_idle_time, else 5 minutes.
	MaxConnIdleTime time.Duration
	// HealthCheckPeriod is how often idle connections are checked. Zero:
	// pool_health_check_period, else 30 seconds.
	HealthCheckPeriod time.Duration
}

// PostgresStore is the Store on a PostgreSQL database, for several books
// servers sharing one. pgx prepares each query once per connection and
// keeps it, so requests do not parse SQL again.
type PostgresStore struct {
	db *pgdb.DB
	// listCache answers ListBooks and, encoded, GET /books (jsonLister).
	*listCache

	// Now returns the current time. It defaults to time.Now; tests replace
	// it. It is read once per operation.
	Now func() time.Time
}

// OpenPostgres connects, applies the migrations the database lacks, each
// under an advisory lock so that servers starting together do not
// collide, and returns the store. It fails with an error naming the step
// when the URL is wrong, the server cannot be reached or refuses the
// login, or a migration fails, and with ErrSchemaTooNew when a newer build
// migrated the database. Errors never contain the URL's password.
func OpenPostgres(ctx context.Context, cfg PostgresConfig) (*PostgresStore, error) {
	migrations, err := fs.Sub(postgresMigrations, "migrations/postgres")
	if err != nil {
		return nil, fmt.Errorf("books: open postgres: %w", err)
	}
	db, err := pgdb.Open(ctx, pgdb.Config{
		URL:               cfg.URL,
		Schema:            cfg.Schema,
		MaxConns:          cfg.MaxConns,
		MinConns:          cfg.MinConns,
		MaxConnIdleTime:   cfg.MaxConnIdleTime,
		HealthCheckPeriod: cfg.HealthCheckPeriod,
		ApplicationName:   "latchkey-books",
		Migrations:        migrations,
		MigrationsTable:   postgresMigrationsTable,
	})
	if errors.Is(err, pgdb.ErrSchemaTooNew) {
		err = schemaTooNew{err}
	}
	if err != nil {
		return nil, fmt.Errorf("books: open postgres: %w", err)
	}
	s := &PostgresStore{db: db, Now: time.Now}
	s.listCache = newListCache(s.booksVersion, s.loadBooks)
	return s, nil
}

// Ping implements Store: it fails, with pgdb's ErrReadOnly, when the
// database is a standby or starts its transactions read-only, and then
// drops the pool's connections, which PostgreSQL opened read-only.
func (s *PostgresStore) Ping(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return fmt.Errorf("books: ping: %w", err)
	}
	return nil
}

// Close implements Store. It waits for connections in use to be released.
func (s *PostgresStore) Close() error {
	s.db.Close()
	return nil
}

// ListBooks implements Store. It answers from memory while the books'
// version count has not moved (see listCache): one single-row read per
// call instead of the whole table, so a book written through any replica
// is listed by every replica from its next request on.
func (s *PostgresStore) ListBooks(ctx context.Context) ([]Book, error) {
	return s.listCache.list(ctx)
}

// booksVersion reads the count every change to books moves.
func (s *PostgresStore) booksVersion(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.Pool.QueryRow(ctx, `SELECT n FROM books_version WHERE id = 1`).Scan(&n)
	return n, err
}

// loadBooks reads every book from the database.
func (s *PostgresStore) loadBooks(ctx context.Context) ([]Book, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT `+bookColumns+` FROM books ORDER BY id`)
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
func (s *PostgresStore) Book(ctx context.Context, id int64) (Book, error) {
	var b Book
	err := scanBook(s.db.Pool.QueryRow(ctx, `SELECT `+bookColumns+` FROM books WHERE id = $1`, id), &b)
	if errors.Is(err, pgx.ErrNoRows) {
		return Book{}, ErrNotFound
	}
	if err != nil {
		return Book{}, fmt.Errorf("books: book %d: %w", id, err)
	}
	return b, nil
}

// CreateBook implements Store.
func (s *PostgresStore) CreateBook(ctx context.Context, b Book) (Book, error) {
	if err := checkText(b.Author, b.Country, b.Language, b.Title); err != nil {
		return Book{}, fmt.Errorf("books: create book: %w", err)
	}
	err := s.db.Pool.QueryRow(ctx, `INSERT INTO books (author, country, language, pages, title, year)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year).Scan(&b.ID)
	if err != nil {
		return Book{}, fmt.Errorf("books: create book: %w", err)
	}
	return b, nil
}

// UpdateBook implements Store.
func (s *PostgresStore) UpdateBook(ctx context.Context, b Book) (Book, error) {
	if err := checkText(b.Author, b.Country, b.Language, b.Title); err != nil {
		return Book{}, fmt.Errorf("books: update book %d: %w", b.ID, err)
	}
	tag, err := s.db.Pool.Exec(ctx, `UPDATE books
		SET author = $1, country = $2, language = $3, pages = $4, title = $5, year = $6
		WHERE id = $7`,
		b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year, b.ID)
	if err != nil {
		return Book{}, fmt.Errorf("books: update book %d: %w", b.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return Book{}, ErrNotFound
	}
	return b, nil
}

// DeleteBook implements Store.
func (s *PostgresStore) DeleteBook(ctx context.Context, id int64) error {
	tag, err := s.db.Pool.Exec(ctx, `DELETE FROM books WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("books: delete book %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// ListArticles implements Store.
func (s *PostgresStore) ListArticles(ctx context.Context, owner string) ([]Article, error) {
	if checkText(owner) != nil {
		return []Article{}, nil // CreateArticle stores no such owner
	}
	rows, err := s.db.Pool.Query(ctx,
		`SELECT id, title, body, author, created_at FROM articles WHERE owner = $1 ORDER BY id`, owner)
	if err != nil {
		return nil, fmt.Errorf("books: list articles: %w", err)
	}
	defer rows.Close()
	list := []Article{}
	for rows.Next() {
		var a Article
		if err := rows.Scan(&a.ID, &a.Title, &a.Body, &a.Author, &a.CreatedAt); err != nil {
			return nil, fmt.Errorf("books: list articles: %w", err)
		}
		a.CreatedAt = a.CreatedAt.UTC() // pgx returns the local zone
		list = append(list, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("books: list articles: %w", err)
	}
	return list, nil
}

// CreateArticle implements Store.
func (s *PostgresStore) CreateArticle(ctx context.Context, owner string, a Article) (Article, error) {
	if err := checkText(owner, a.Title, a.Body, a.Author); err != nil {
		return Article{}, fmt.Errorf("books: create article: %w", err)
	}
	a.CreatedAt = s.Now().UTC().Truncate(time.Second)
	err := s.db.Pool.QueryRow(ctx, `INSERT INTO articles (owner, title, body, author, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		owner, a.Title, a.Body, a.Author, a.CreatedAt).Scan(&a.ID)
	if err != nil {
		return Article{}, fmt.Errorf("books: create article: %w", err)
	}
	return a, nil
}

// SeedDemo implements Store. The lock, SHARE ROW EXCLUSIVE, conflicts with
// itself and with inserts, so that of several servers seeding at once one
// counts and inserts while the others wait, then find the books; READ
// COMMITTED alone would let each see an empty table.
func (s *PostgresStore) SeedDemo(ctx context.Context) error {
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE books IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var seeded bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM books)`).Scan(&seeded); err != nil {
			return err
		}
		if seeded {
			return nil
		}
		for _, b := range demoBooks {
			if _, err := tx.Exec(ctx, `INSERT INTO books (author, country, language, pages, title, year)
				VALUES ($1, $2, $3, $4, $5, $6)`,
				b.Author, b.Country, b.Language, b.Pages, b.Title, b.Year); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("books: seed: %w", err)
	}
	return nil
}
