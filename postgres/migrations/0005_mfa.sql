-- Two-step sign-in. One TOTP enrolment per user, pending (enabled_at
-- NULL) until its first code is seen; last_step is the time step of the
-- last code accepted, so a code is accepted once.
CREATE TABLE totp (
	user_id    text COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	secret     bytea NOT NULL,
	sealed     boolean NOT NULL,
	created_at timestamptz NOT NULL,
	enabled_at timestamptz,
	last_step  bigint NOT NULL DEFAULT 0
);

-- Recovery codes, stored as SHA-256 hashes; used_at is set once.
CREATE TABLE recovery_codes (
	user_id text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash    bytea NOT NULL,
	used_at timestamptz,
	PRIMARY KEY (user_id, hash)
);

-- The first step of a login with a second factor: the hash of the
-- mfaToken the client holds.
CREATE TABLE mfa_challenges (
	hash       bytea PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);
-- DeleteExpiredMFAChallenges.
CREATE INDEX mfa_challenges_expires ON mfa_challenges (expires_at);
