-- Times are INTEGER unix microseconds in UTC (NULL for the zero time): exact
-- round-trip of the microsecond-truncated times the Service writes, compact,
-- and ordered by plain integer comparison.

CREATE TABLE users (
	id            TEXT PRIMARY KEY,
	username      TEXT NOT NULL,
	-- Uniqueness and lookup ignore ASCII case. SQLite's lower() folds ASCII
	-- only (no ICU in this build), which is exactly the contract's rule;
	-- a generated column means no code path can store a stale key.
	username_key  TEXT NOT NULL GENERATED ALWAYS AS (lower(username)) STORED UNIQUE,
	role          TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
	id                  TEXT PRIMARY KEY,
	user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at          INTEGER NOT NULL,
	last_used_at        INTEGER,
	expires_at          INTEGER,
	revoked_at          INTEGER,
	revoke_reason       TEXT NOT NULL DEFAULT '',
	user_agent          TEXT NOT NULL DEFAULT '',
	ip                  TEXT NOT NULL DEFAULT '',
	current_hash        BLOB NOT NULL UNIQUE,
	previous_hash       BLOB,
	previous_retired_at INTEGER,
	previous_successor  BLOB
);

-- ListSessions and RevokeUserSessions.
CREATE INDEX sessions_user_created ON sessions (user_id, created_at);
-- DeleteExpiredSessions.
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every refresh token ever issued in a session, current one included, so
-- that presenting an old one is recognised as reuse until the session is
-- deleted.
CREATE TABLE refresh_tokens (
	hash       BLOB PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	issued_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- The cascade from sessions looks tokens up by session.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE signing_keys (
	id         TEXT PRIMARY KEY,
	alg        TEXT NOT NULL,
	private    BLOB NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE INDEX signing_keys_created ON signing_keys (created_at);
