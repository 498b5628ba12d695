package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/latchkey-dev/latchkey"
)

// stmts keeps every query the store runs prepared, one per query text.
// SQLite otherwise compiles the SQL on each call, which measured a fifth
// of a token refresh. database/sql re-prepares a *sql.Stmt on each pooled
// connection the first time it runs there.
type stmts struct {
	db *sql.DB
	m  sync.Map // query → *sql.Stmt
}

func (c *stmts) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.m.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.m.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *stmts) close() {
	c.m.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// scanner is what *sql.Row offers and errRow imitates.
type scanner interface{ Scan(dest ...any) error }

// errRow reports a prepare failure where a *sql.Row is expected.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queryRow is db.QueryRowContext through a prepared statement.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) scanner {
	st, err := s.stmts.get(ctx, query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// query is db.QueryContext through a prepared statement.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// exec is db.ExecContext through a prepared statement.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := s.stmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// prepare prepares queries ahead of use, outside any transaction.
func (c *stmts) prepare(ctx context.Context, queries []string) error {
	for _, q := range queries {
		if _, err := c.get(ctx, q); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	return nil
}

// txExec is tx.ExecContext through a statement Open prepared. A query
// Open did not prepare runs unprepared rather than prepared here: that
// would take a second connection while the transaction holds one.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, ok := s.stmts.m.Load(query)
	if !ok {
		return tx.ExecContext(ctx, query, args...)
	}
	return tx.StmtContext(ctx, st.(*sql.Stmt)).ExecContext(ctx, args...)
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN) and
// commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// affected is how many rows an Exec changed (SQLite counts the rows its
// WHERE matched, changed or not).
func affected(res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// oneRow turns an Exec that changed no row into ErrNotFound.
func oneRow(res sql.Result, err error) error {
	n, err := affected(res, err)
	if err == nil && n == 0 {
		return latchkey.ErrNotFound
	}
	return err
}
