//go:build mattn

package sqlitedrivers

import (
	"database/sql"

	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"; needs cgo
)

// mattn/go-sqlite3: the SQLite C amalgamation through cgo.
var other = []driver{{"mattn-cgo", func(path, sync string) (*sql.DB, error) {
	return sql.Open("sqlite3", "file:"+path+
		"?_busy_timeout=10000&_foreign_keys=1&_journal_mode=WAL&_synchronous="+sync+"&_txlock=immediate")
}}}
