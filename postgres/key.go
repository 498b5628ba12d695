package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

const keyColumns = `id, alg, state, private, sealed, created_at, activated_at, retired_at`

// signingKeysLock is the advisory lock that makes UpdateSigningKeys one
// at a time across replicas: at READ COMMITTED two transactions could
// otherwise both read an empty table and both create a first key.
const signingKeysLock = "latchkey signing keys"

// UpdateSigningKeys implements latchkey.Store.
func (s *Store) UpdateSigningKeys(ctx context.Context, decide func([]*latchkey.SigningKey) (latchkey.KeyChanges, error)) error {
	var decideErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, signingKeysLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, id DESC`)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, scanKey)
		if err != nil {
			return err
		}
		ch, err := decide(keys)
		if err != nil {
			decideErr = err
			return err
		}
		for _, k := range ch.Create {
			if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				k.ID, k.Alg, string(k.State), k.Private, k.Sealed, timeArg(k.CreatedAt), timeArg(k.ActivatedAt), timeArg(k.RetiredAt)); err != nil {
				return fmt.Errorf("create signing key %s: %w", k.ID, constraintErr(err))
			}
		}
		for _, k := range ch.Update {
			err := oneRow(tx.Exec(ctx,
				`UPDATE signing_keys SET state = $1, private = $2, sealed = $3, activated_at = $4, retired_at = $5 WHERE id = $6`,
				string(k.State), k.Private, k.Sealed, timeArg(k.ActivatedAt), timeArg(k.RetiredAt), k.ID))
			if err != nil {
				return fmt.Errorf("update signing key %s: %w", k.ID, err)
			}
		}
		for _, id := range ch.Delete {
			if err := oneRow(tx.Exec(ctx, `DELETE FROM signing_keys WHERE id = $1`, id)); err != nil {
				return fmt.Errorf("delete signing key %s: %w", id, err)
			}
		}
		return nil
	})
	if decideErr != nil && errors.Is(err, decideErr) {
		return decideErr
	}
	if err != nil {
		return fmt.Errorf("update signing keys: %w", err)
	}
	return nil
}

// SigningKeys implements latchkey.Store. Keys created in the same
// microsecond come in descending id order, so the order is stable.
func (s *Store) SigningKeys(ctx context.Context) ([]*latchkey.SigningKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM signing_keys ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, scanKey)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return keys, nil
}

func scanKey(row pgx.CollectableRow) (*latchkey.SigningKey, error) {
	var k latchkey.SigningKey
	var state string
	if err := row.Scan(&k.ID, &k.Alg, &state, &k.Private, &k.Sealed,
		timeCol{&k.CreatedAt}, timeCol{&k.ActivatedAt}, timeCol{&k.RetiredAt}); err != nil {
		return nil, err
	}
	k.State = latchkey.KeyState(state)
	return &k, nil
}
