// Package postgres implements latchkey.Store on PostgreSQL, for several
// auth-server replicas sharing one database.
//
// It uses jackc/pgx v5 through a bounded pgxpool (see Config for the
// bounds and their defaults). pgx prepares each query once per connection
// and keeps it, so the hot paths are not parsed again on every call.
//
// # Schema and migrations
//
// The schema lives in migrations/NNNN_name.sql, embedded. Open applies the
// ones the database has not recorded in schema_migrations, each in its own
// transaction that first takes a transaction-scoped advisory lock
// (pg_advisory_xact_lock) and then reads the record again: replicas that
// start together on an empty database queue on the lock, the first applies
// each migration and the others find it recorded. The lock ends with the
// transaction, so a replica that dies mid-migration leaves neither a lock
// nor half a migration behind. A restart on an up-to-date schema reads the
// record without locking or running any DDL, so the server's database role
// needs no DDL privilege once an operator has migrated the schema.
//
// A database whose recorded version is newer than every migration this
// build embeds makes Open fail with ErrSchemaTooNew: an older binary must
// not write to a schema it does not know.
//
// Config.Schema puts Latchkey in a schema of its own (created if absent)
// by setting search_path on every connection; the advisory lock's key is
// derived from the schema's name, so Latchkey instances in different
// schemas of one database do not wait for one another.
//
// # Concurrency
//
// Every write is one statement or one short transaction at the default
// READ COMMITTED isolation. RotateRefreshToken is a single statement: an
// UPDATE ... WHERE current_hash = OldHash AND revoked_at IS NULL whose
// result feeds the INSERT of the new token hash in a data-modifying CTE.
// Concurrent rotations of one token queue on the session's row lock; the
// first commits, and each later one re-evaluates its WHERE clause against
// the committed row, changes nothing and reports latchkey.ErrConflict. No
// serialization failures, no retries, and no half-written rotation: the
// statement commits both rows or neither.
//
// Constraint violations are mapped by SQLSTATE: 23505 (unique) to
// latchkey.ErrConflict, 23503 (foreign key) to latchkey.ErrNotFound.
//
// # Faults
//
// A lost connection fails the calls using it with an error and leaves the
// pool; a connection idle for more than a second is pinged before it is
// handed out, so after a database restart the pool refills by itself.
// A connection that reports the database read-only (SQLSTATE 25006), an
// I/O error (class 58) or corruption (XX001, XX002) is closed instead of
// going back to the pool, and a read-only report also drops the pool's
// other connections (at most once a second): read-only is a property a
// PostgreSQL session keeps from its start (default_transaction_read_only),
// so the connections opened while the database was read-only would
// otherwise keep failing writes long after it is writable again.
//
// Ping is the readiness check: it fails when the database does not answer
// and, with ErrReadOnly, when it answers but would refuse writes (a hot
// standby, or default_transaction_read_only).
//
// Times are stored as timestamptz and always come back in UTC.
package postgres
