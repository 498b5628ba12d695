//go:build ncruces

package sqlitedrivers

import (
	"database/sql"

	ncruces "github.com/ncruces/go-sqlite3/driver"
)

// ncruces/go-sqlite3: SQLite compiled to Wasm and translated to Go
// (wasm2go), no cgo.
var other = []driver{{"ncruces", func(path, sync string) (*sql.DB, error) {
	return ncruces.Open("file:" + path +
		"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(wal)&_pragma=synchronous(" + sync + ")&_txlock=immediate")
}}}
