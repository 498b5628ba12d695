-- Identifiers and usernames use the "C" collation: ids then compare bytewise,
-- as Go strings do (ListUsers pages by id), and lower() folds ASCII only,
-- which is exactly the contract's case rule. Under the database's own
-- collation (often en_US.UTF-8 or C.UTF-8) lower() would also fold non-ASCII
-- letters, and the order of ids would depend on the server's locale.
--
-- Times are timestamptz: microsecond precision, the unit the Service
-- truncates to, so every time round-trips exactly; NULL is the zero time.

CREATE TABLE users (
	id            text COLLATE "C" PRIMARY KEY,
	username      text COLLATE "C" NOT NULL,
	role          text NOT NULL,
	password_hash text NOT NULL,
	disabled      boolean NOT NULL DEFAULT false,
	created_at    timestamptz NOT NULL
);

-- Uniqueness and UserByUsername ignore ASCII case.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));

CREATE TABLE sessions (
	id                  text COLLATE "C" PRIMARY KEY,
	user_id             text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at          timestamptz NOT NULL,
	last_used_at        timestamptz,
	expires_at          timestamptz,
	revoked_at          timestamptz,
	revoke_reason       text NOT NULL DEFAULT '',
	user_agent          text NOT NULL DEFAULT '',
	ip                  text NOT NULL DEFAULT '',
	-- Not UNIQUE here: refresh_tokens.hash is the one place a hash is unique,
	-- and every current hash is recorded there. An index on current_hash would
	-- only cost each rotation another index write; the compare-and-swap finds
	-- the row by id.
	current_hash        bytea NOT NULL,
	previous_hash       bytea,
	previous_retired_at timestamptz,
	previous_successor  bytea
);

-- ListSessions (newest first) and RevokeUserSessions.
CREATE INDEX sessions_user_created ON sessions (user_id, created_at DESC, id DESC);
-- DeleteExpiredSessions walks expired sessions oldest first, in batches.
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Every refresh token ever issued in a session, current one included, so
-- that presenting an old one is recognised as reuse until the session is
-- deleted. The primary key is the lookup of every refresh.
CREATE TABLE refresh_tokens (
	hash       bytea PRIMARY KEY,
	session_id text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	issued_at  timestamptz NOT NULL
);

-- The cascade from a deleted session finds its tokens by session.
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- A handful of rows: SigningKeys sorts them without an index.
CREATE TABLE signing_keys (
	id         text COLLATE "C" PRIMARY KEY,
	alg        text NOT NULL,
	private    bytea NOT NULL,
	created_at timestamptz NOT NULL
);
