// Package sqlitedrivers compares SQLite drivers on Latchkey's hot write,
// the refresh token rotation transaction, with the settings package sqlite
// uses (WAL, synchronous=FULL, foreign keys, BEGIN IMMEDIATE).
//
// It is a module of its own so that the main module never depends on the
// drivers it is compared with. Run it with
//
//	cd bench/sqlitedrivers
//	go test -bench . -benchtime 3s               # modernc alone
//	go test -bench . -benchtime 3s -tags ncruces # and ncruces/go-sqlite3
//	go test -bench . -benchtime 3s -tags mattn   # and mattn/go-sqlite3 (cgo)
//
// ncruces and mattn both register the driver name "sqlite3", so each needs a
// binary of its own.
package sqlitedrivers
