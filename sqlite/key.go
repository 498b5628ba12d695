package sqlite

import (
	"context"
	"fmt"

	"github.com/latchkey-dev/latchkey"
)

// CreateSigningKey implements latchkey.Store.
func (s *Store) CreateSigningKey(ctx context.Context, k *latchkey.SigningKey) error {
	_, err := s.exec(ctx,
		`INSERT INTO signing_keys (id, alg, private, created_at) VALUES (?, ?, ?, ?)`,
		k.ID, k.Alg, k.Private, timeArg(k.CreatedAt))
	if isUnique(err) {
		return fmt.Errorf("create signing key: %w: %w", latchkey.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	return nil
}

// InitSigningKey implements latchkey.Store. The check and the insert run
// in one IMMEDIATE transaction, which holds the database's write lock, so
// of several processes on one file only the first inserts.
func (s *Store) InitSigningKey(ctx context.Context, k *latchkey.SigningKey) (*latchkey.SigningKey, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("init signing key: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO signing_keys (id, alg, private, created_at)
		 SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = ?)`,
		k.ID, k.Alg, k.Private, timeArg(k.CreatedAt), k.Alg); err != nil {
		return nil, fmt.Errorf("init signing key: %w", err)
	}
	var got latchkey.SigningKey
	if err := tx.QueryRowContext(ctx,
		`SELECT id, alg, private, created_at FROM signing_keys WHERE alg = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
		k.Alg).Scan(&got.ID, &got.Alg, &got.Private, timeCol{&got.CreatedAt}); err != nil {
		return nil, fmt.Errorf("init signing key: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("init signing key: %w", err)
	}
	return &got, nil
}

// SigningKeys implements latchkey.Store. Keys created in the same
// microsecond come in descending id order, so the order is stable.
func (s *Store) SigningKeys(ctx context.Context) ([]*latchkey.SigningKey, error) {
	rows, err := s.query(ctx,
		`SELECT id, alg, private, created_at FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	defer rows.Close()
	var keys []*latchkey.SigningKey
	for rows.Next() {
		var k latchkey.SigningKey
		if err := rows.Scan(&k.ID, &k.Alg, &k.Private, timeCol{&k.CreatedAt}); err != nil {
			return nil, fmt.Errorf("signing keys: %w", err)
		}
		keys = append(keys, &k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return keys, nil
}
