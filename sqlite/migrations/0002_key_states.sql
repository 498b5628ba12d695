-- Signing keys get the contract's lifecycle: next, active, retired,
-- withdrawn. Keys stored before it were the ones signing: active, since
-- their creation. Private keys may now be sealed under a key-encryption key.
ALTER TABLE signing_keys ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
	CHECK (state IN ('next', 'active', 'retired', 'withdrawn'));
ALTER TABLE signing_keys ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE signing_keys ADD COLUMN activated_at INTEGER;
ALTER TABLE signing_keys ADD COLUMN retired_at INTEGER;
UPDATE signing_keys SET activated_at = created_at;
