package sqlitedrivers

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // registers "sqlite"
)

// schema is the part of sqlite/migrations/0001_init.sql a rotation touches.
const schema = `
CREATE TABLE users (id TEXT PRIMARY KEY);
CREATE TABLE sessions (
	id TEXT PRIMARY KEY,
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	last_used_at INTEGER, expires_at INTEGER, revoked_at INTEGER,
	current_hash BLOB NOT NULL UNIQUE, previous_hash BLOB,
	previous_retired_at INTEGER, previous_successor BLOB
);
CREATE TABLE refresh_tokens (
	hash BLOB PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	issued_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);
`

// driver is one way to open the database with package sqlite's settings;
// sync is FULL or NORMAL.
type driver struct {
	name string
	open func(path, sync string) (*sql.DB, error)
}

var modernc = driver{"modernc", func(path, sync string) (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+path+
		"?_busy_timeout=10000&_foreign_keys=1&_journal_mode=WAL&_synchronous="+sync+"&_txlock=immediate")
}}

// drivers lists modernc and, depending on build tags, the one other driver
// built in: ncruces and mattn both register "sqlite3", so one binary holds
// at most one of them.
var drivers = append([]driver{modernc}, other...)

func BenchmarkRotate(b *testing.B) {
	for _, d := range drivers {
		for _, sync := range []string{"FULL", "NORMAL"} {
			b.Run(d.name+"/synchronous="+sync, func(b *testing.B) { benchmarkRotate(b, d, sync) })
		}
	}
}

func benchmarkRotate(b *testing.B, d driver, sync string) {
	ctx := context.Background()
	db, err := d.open(filepath.Join(b.TempDir(), "bench.db"), sync)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(4)
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
		b.Fatal(err)
	}
	if want := map[string]string{"FULL": "2", "NORMAL": "1"}[sync]; mode != want {
		b.Fatalf("synchronous = %s, want %s", mode, want)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO users (id) VALUES ('u1')`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO sessions (id, user_id, current_hash) VALUES ('s1', 'u1', ?)`, []byte("s1/0")); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES (?, 's1', 0)`, []byte("s1/0")); err != nil {
		b.Fatal(err)
	}

	old := []byte("s1/0")
	successor := make([]byte, 71)
	for k := 1; b.Loop(); k++ {
		next := fmt.Appendf(nil, "s1/%d", k)
		at := time.Now().UnixMicro()
		if err := rotate(ctx, db, old, next, successor, at); err != nil {
			b.Fatal(err)
		}
		old = next
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
}

// rotate is sqlite.Store.RotateRefreshToken's transaction.
func rotate(ctx context.Context, db *sql.DB, old, next, successor []byte, at int64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `
		UPDATE sessions SET previous_hash = current_hash, previous_retired_at = ?,
			previous_successor = ?, current_hash = ?, last_used_at = ?, expires_at = ?
		WHERE id = 's1' AND current_hash = ? AND revoked_at IS NULL`,
		at, successor, next, at, at+3600e6, old)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("rows affected %d, %v", n, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES (?, 's1', ?)`, next, at); err != nil {
		return err
	}
	return tx.Commit()
}
