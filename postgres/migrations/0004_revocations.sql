-- The revocation feed: a user's token generation goes up with every
-- user-level revocation (role change, disable, sign-out everywhere);
-- access tokens carry the generation they were issued under, so a
-- verifier refuses exactly the tokens issued before the event. The feed
-- reads recent changes through these indexes.
ALTER TABLE users
	ADD COLUMN generation bigint NOT NULL DEFAULT 0,
	ADD COLUMN generation_at timestamptz;
CREATE INDEX users_generation_at ON users (generation_at) WHERE generation_at IS NOT NULL;
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
