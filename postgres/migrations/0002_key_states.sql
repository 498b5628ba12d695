-- Signing keys get the contract's lifecycle: next, active, retired,
-- withdrawn. Keys stored before it were the ones signing: active, since
-- their creation. Private keys may now be sealed under a key-encryption key.
ALTER TABLE signing_keys
	ADD COLUMN state text NOT NULL DEFAULT 'active'
		CHECK (state IN ('next', 'active', 'retired', 'withdrawn')),
	ADD COLUMN sealed boolean NOT NULL DEFAULT false,
	ADD COLUMN activated_at timestamptz,
	ADD COLUMN retired_at timestamptz;
UPDATE signing_keys SET activated_at = created_at;
