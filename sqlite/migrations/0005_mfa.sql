-- Two-step sign-in. One TOTP enrolment per user, pending (enabled_at
-- NULL) until its first code is seen; last_step is the time step of the
-- last code accepted, so a code is accepted once.
CREATE TABLE totp (
	user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	secret     BLOB NOT NULL,
	sealed     INTEGER NOT NULL CHECK (sealed IN (0, 1)),
	created_at INTEGER NOT NULL,
	enabled_at INTEGER,
	last_step  INTEGER NOT NULL DEFAULT 0
);

-- Recovery codes, stored as SHA-256 hashes; used_at is set once.
CREATE TABLE recovery_codes (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash    BLOB NOT NULL,
	used_at INTEGER,
	PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;

-- The first step of a login with a second factor: the hash of the
-- mfaToken the client holds.
CREATE TABLE mfa_challenges (
	hash       BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
-- DeleteExpiredMFAChallenges.
CREATE INDEX mfa_challenges_expires ON mfa_challenges (expires_at);
