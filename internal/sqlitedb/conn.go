package sqlitedb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// A connection keeps, for as long as it is open, what SQLite found when it
// opened the file: one opened while the file could not be written is
// read-only for good, and goes on failing every write with SQLITE_READONLY
// after the file is writable again. database/sql would keep such a
// connection in its pool until it sat idle for a minute, which under load
// is never. So connections are wrapped:
//
//   - a connection that reports SQLITE_READONLY, SQLITE_IOERR,
//     SQLITE_CORRUPT, SQLITE_NOTADB or SQLITE_CANTOPEN is marked bad, and
//     database/sql closes it when it is handed back (driver.Validator) or,
//     failing that, the next time it is taken (driver.SessionResetter,
//     which makes database/sql try another connection, then a new one);
//   - a connection that came up read-only is kept only while the files
//     still cannot be written: the moment they can, it is refused on its
//     way in or out of the pool, before any write fails on it. Reads keep
//     working on it while the outage lasts.
//
// In-memory databases are never marked: their one connection is the
// database, and closing it would throw the data away.

// connector opens the driver's connections and wraps each one.
type connector struct {
	base driver.Connector
	// path is the database file, absolute; "" for ":memory:".
	path string
}

var _ driver.Connector = (*connector)(nil)

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.base.Connect(ctx)
	if err != nil {
		return nil, err
	}
	inner, ok := dc.(innerConn)
	if !ok {
		dc.Close()
		return nil, fmt.Errorf("sqlite driver connection %T lacks the context methods", dc)
	}
	cn := &conn{inner: inner, path: c.path}
	if c.path != "" {
		ro, err := inner.IsReadOnly("main")
		if err != nil {
			inner.Close()
			return nil, err
		}
		cn.openedReadOnly = ro
	}
	return cn, nil
}

func (c *connector) Driver() driver.Driver { return c.base.Driver() }

// innerConn is what the wrapper needs of a modernc.org/sqlite connection.
type innerConn interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	readOnlyReporter
}

// readOnlyReporter is sqlite3_db_readonly, which modernc.org/sqlite's
// connections offer and conn passes on (Ping asks it through Raw).
type readOnlyReporter interface {
	IsReadOnly(schema string) (bool, error)
}

// conn is a pooled connection that knows when it must leave the pool.
// database/sql uses a connection from one goroutine at a time, but the
// pool asks IsValid from whichever goroutine hands it back, hence atomic.
type conn struct {
	inner innerConn
	path  string
	// openedReadOnly: SQLite could not open the file for writing.
	openedReadOnly bool
	// bad: the connection reported an error that makes it suspect.
	bad atomic.Bool
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
)

// observe marks c bad if err says that its file failed it. It returns err.
func (c *conn) observe(err error) error {
	if err != nil && c.path != "" && Suspect(err) {
		c.bad.Store(true)
	}
	return err
}

// usable reports whether c may go on serving: not marked, and not a
// read-only connection to files that could now be opened for writing.
func (c *conn) usable() bool {
	if c.bad.Load() {
		return false
	}
	return !c.openedReadOnly || checkWritable(c.path) != nil
}

// Suspect reports whether err is one after which a connection must not be
// reused: SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_NOTADB or
// SQLITE_CANTOPEN, in any of their extended forms. It goes by the
// driver's error code, never by the message.
func Suspect(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	if !ok {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT,
		sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CANTOPEN:
		return true
	}
	return false
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, c.observe(err)
	}
	inner, ok := s.(innerStmt)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("sqlite driver statement %T lacks the context methods", s)
	}
	return &stmt{inner: inner, c: c}, nil
}

func (c *conn) Close() error { return c.inner.Close() }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	t, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.observe(err)
	}
	return &tx{inner: t, c: c}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	r, err := c.inner.ExecContext(ctx, query, args)
	return r, c.observe(err)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := c.inner.QueryContext(ctx, query, args)
	if err != nil {
		return nil, c.observe(err)
	}
	return &rows{inner: r, c: c}, nil
}

func (c *conn) Ping(ctx context.Context) error { return c.observe(c.inner.Ping(ctx)) }

// ResetSession runs before a pooled connection is used again; ErrBadConn
// makes database/sql close it and try another.
func (c *conn) ResetSession(ctx context.Context) error {
	if !c.usable() {
		return driver.ErrBadConn
	}
	return c.inner.ResetSession(ctx)
}

// IsValid runs before a connection goes back to the pool; false closes it.
func (c *conn) IsValid() bool { return c.usable() && c.inner.IsValid() }

// IsReadOnly is sqlite3_db_readonly for the database schema names.
func (c *conn) IsReadOnly(schema string) (bool, error) { return c.inner.IsReadOnly(schema) }

// innerStmt is what the wrapper needs of a driver statement.
type innerStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type stmt struct {
	inner innerStmt
	c     *conn
}

func (s *stmt) Close() error  { return s.inner.Close() }
func (s *stmt) NumInput() int { return s.inner.NumInput() }

// Exec and Query complete driver.Stmt; database/sql calls the context
// methods below.
func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	r, err := s.inner.Exec(args)
	return r, s.c.observe(err)
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	r, err := s.inner.Query(args)
	if err != nil {
		return nil, s.c.observe(err)
	}
	return &rows{inner: r, c: s.c}, nil
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	r, err := s.inner.ExecContext(ctx, args)
	return r, s.c.observe(err)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.inner.QueryContext(ctx, args)
	if err != nil {
		return nil, s.c.observe(err)
	}
	return &rows{inner: r, c: s.c}, nil
}

// rows watches Next too: SQLite reports most errors while stepping, and an
// INSERT ... RETURNING is a query whose write happens there.
type rows struct {
	inner driver.Rows
	c     *conn
}

func (r *rows) Columns() []string { return r.inner.Columns() }
func (r *rows) Close() error      { return r.c.observe(r.inner.Close()) }
func (r *rows) Next(dest []driver.Value) error {
	return r.c.observe(r.inner.Next(dest)) // io.EOF is no sqlite.Error
}

// The column type methods are passed on, so that Rows.ColumnTypes reports
// what the driver knows.

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.inner.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.inner.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.inner.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.inner.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.inner.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

type tx struct {
	inner driver.Tx
	c     *conn
}

func (t *tx) Commit() error   { return t.c.observe(t.inner.Commit()) }
func (t *tx) Rollback() error { return t.c.observe(t.inner.Rollback()) }
