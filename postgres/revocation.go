package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

// BumpGeneration implements latchkey.Store: one UPDATE ... RETURNING, so
// concurrent bumps from several replicas queue on the row and none is lost.
func (s *Store) BumpGeneration(ctx context.Context, userID string, at time.Time) (int64, error) {
	var gen int64
	err := s.pool.QueryRow(ctx, `UPDATE users SET generation = generation + 1, generation_at = $1 WHERE id = $2 RETURNING generation`,
		timeArg(at), userID).Scan(&gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("bump generation: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("bump generation: %w", err)
	}
	return gen, nil
}

// Revocations implements latchkey.Store through the partial indexes on
// revoked_at and generation_at, in one snapshot so that the two lists
// agree with each other.
func (s *Store) Revocations(ctx context.Context, since time.Time) (*latchkey.Revocations, error) {
	out := &latchkey.Revocations{}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, revoked_at FROM sessions WHERE revoked_at >= $1 ORDER BY revoked_at, id`, since)
		if err != nil {
			return err
		}
		if out.Sessions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (latchkey.RevokedSession, error) {
			var r latchkey.RevokedSession
			return r, row.Scan(&r.ID, timeCol{&r.RevokedAt})
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT id, generation, generation_at FROM users WHERE generation_at >= $1 ORDER BY generation_at, id`, since)
		if err != nil {
			return err
		}
		out.Users, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (latchkey.UserRevocation, error) {
			var r latchkey.UserRevocation
			return r, row.Scan(&r.UserID, &r.Generation, timeCol{&r.At})
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	return out, nil
}
