// Package sqlite implements latchkey.Store on SQLite, the default backend.
//
// It uses modernc.org/sqlite, SQLite translated to pure Go: the binary stays
// static, builds without a C toolchain and cross-compiles with GOOS/GOARCH
// alone. The price is speed (a cgo driver runs the same C faster), which an
// auth server's write rate does not come near. bench/sqlitedrivers runs the
// rotation transaction on each driver: with synchronous=FULL the fsync
// dominates and all three are within about 10% of each other (about 4,000
// rotations/s on a 2-vCPU VM: ncruces/go-sqlite3 a little slower, cgo
// mattn/go-sqlite3 a little faster than modernc).
//
// The database is opened in WAL mode, so that reads do not wait for the
// writer, with synchronous=FULL, so that a committed rotation or revocation
// survives a power cut (NORMAL would only survive a process crash, and a
// revocation that comes back after a reboot is a security bug). Write
// transactions begin IMMEDIATE: they take the write lock up front and wait
// for it under busy_timeout, instead of failing with SQLITE_BUSY when a read
// lock cannot be upgraded. Foreign keys are enforced on every connection.
//
// The schema lives in migrations/NNNN_name.sql, embedded and applied in
// order by Open, each in its own transaction and recorded in
// schema_migrations. Times are stored as INTEGER unix microseconds in UTC,
// NULL for the zero time.
package sqlite
