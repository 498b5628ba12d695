package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

// CreateSigningKey implements latchkey.Store. Replicas starting together
// on an empty database may each try to create a first key; the primary
// key lets exactly one of them store a given kid.
func (s *Store) CreateSigningKey(ctx context.Context, k *latchkey.SigningKey) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO signing_keys (id, alg, private, created_at) VALUES ($1, $2, $3, $4)`,
		k.ID, k.Alg, k.Private, timeArg(k.CreatedAt))
	if err != nil {
		return fmt.Errorf("create signing key: %w", constraintErr(err))
	}
	return nil
}

// signingKeyLock is the advisory lock under which InitSigningKey checks
// and inserts: at READ COMMITTED two transactions could both see no key
// and both insert one.
const signingKeyLock = "latchkey init signing key"

// InitSigningKey implements latchkey.Store.
func (s *Store) InitSigningKey(ctx context.Context, k *latchkey.SigningKey) (*latchkey.SigningKey, error) {
	var got latchkey.SigningKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, signingKeyLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO signing_keys (id, alg, private, created_at)
			 SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2)`,
			k.ID, k.Alg, k.Private, timeArg(k.CreatedAt)); err != nil {
			return err
		}
		return tx.QueryRow(ctx,
			`SELECT id, alg, private, created_at FROM signing_keys WHERE alg = $1 ORDER BY created_at DESC, id DESC LIMIT 1`,
			k.Alg).Scan(&got.ID, &got.Alg, &got.Private, timeCol{&got.CreatedAt})
	})
	if err != nil {
		return nil, fmt.Errorf("init signing key: %w", err)
	}
	return &got, nil
}

// SigningKeys implements latchkey.Store. Keys created in the same
// microsecond come in descending id order, so the order is stable.
func (s *Store) SigningKeys(ctx context.Context) ([]*latchkey.SigningKey, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT id, alg, private, created_at FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*latchkey.SigningKey, error) {
		var k latchkey.SigningKey
		if err := row.Scan(&k.ID, &k.Alg, &k.Private, timeCol{&k.CreatedAt}); err != nil {
			return nil, err
		}
		return &k, nil
	})
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return keys, nil
}
