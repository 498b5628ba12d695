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
