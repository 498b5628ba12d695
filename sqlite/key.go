package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/latchkey-dev/latchkey"
)

const keyColumns = `id, alg, state, private, sealed, created_at, activated_at, retired_at`

// UpdateSigningKeys implements latchkey.Store. The read, the decision and
// the writes share one IMMEDIATE transaction, which holds the database's
// write lock from its start, so processes on one file take turns.
func (s *Store) UpdateSigningKeys(ctx context.Context, decide func([]*latchkey.SigningKey) (latchkey.KeyChanges, error)) error {
	// decide's error comes back as it is; the store's own are wrapped.
	return s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, id DESC`)
		if err != nil {
			return fmt.Errorf("update signing keys: %w", err)
		}
		keys, err := scanKeys(rows)
		if err != nil {
			return fmt.Errorf("update signing keys: %w", err)
		}
		ch, err := decide(keys)
		if err != nil {
			return err
		}
		for _, k := range ch.Create {
			_, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				k.ID, k.Alg, string(k.State), k.Private, k.Sealed, timeArg(k.CreatedAt), timeArg(k.ActivatedAt), timeArg(k.RetiredAt))
			if isUnique(err) {
				return fmt.Errorf("create signing key %s: %w", k.ID, latchkey.ErrConflict)
			}
			if err != nil {
				return fmt.Errorf("create signing key %s: %w", k.ID, err)
			}
		}
		for _, k := range ch.Update {
			err := oneRow(tx.ExecContext(ctx,
				`UPDATE signing_keys SET state = ?, private = ?, sealed = ?, activated_at = ?, retired_at = ? WHERE id = ?`,
				string(k.State), k.Private, k.Sealed, timeArg(k.ActivatedAt), timeArg(k.RetiredAt), k.ID))
			if err != nil {
				return fmt.Errorf("update signing key %s: %w", k.ID, err)
			}
		}
		for _, id := range ch.Delete {
			if err := oneRow(tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE id = ?`, id)); err != nil {
				return fmt.Errorf("delete signing key %s: %w", id, err)
			}
		}
		return nil
	})
}

// SigningKeys implements latchkey.Store. Keys created in the same
// microsecond come in descending id order, so the order is stable.
func (s *Store) SigningKeys(ctx context.Context) ([]*latchkey.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	keys, err := scanKeys(rows)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return keys, nil
}

func scanKeys(rows *sql.Rows) ([]*latchkey.SigningKey, error) {
	defer rows.Close()
	var keys []*latchkey.SigningKey
	for rows.Next() {
		var k latchkey.SigningKey
		var state string
		if err := rows.Scan(&k.ID, &k.Alg, &state, &k.Private, &k.Sealed,
			timeCol{&k.CreatedAt}, timeCol{&k.ActivatedAt}, timeCol{&k.RetiredAt}); err != nil {
			return nil, err
		}
		k.State = latchkey.KeyState(state)
		keys = append(keys, &k)
	}
	return keys, rows.Err()
}
