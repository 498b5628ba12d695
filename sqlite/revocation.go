package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// BumpGeneration implements latchkey.Store: one UPDATE ... RETURNING, so
// the increment is the database's and none is lost.
func (s *Store) BumpGeneration(ctx context.Context, userID string, at time.Time) (int64, error) {
	var gen int64
	err := s.queryRow(ctx, `UPDATE users SET generation = generation + 1, generation_at = ? WHERE id = ? RETURNING generation`,
		timeArg(at), userID).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("bump generation: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("bump generation: %w", err)
	}
	return gen, nil
}

// Revocations implements latchkey.Store through the partial indexes on
// revoked_at and generation_at.
func (s *Store) Revocations(ctx context.Context, since time.Time) (*latchkey.Revocations, error) {
	out := &latchkey.Revocations{}
	rows, err := s.query(ctx, `SELECT id, revoked_at FROM sessions WHERE revoked_at >= ? ORDER BY revoked_at, id`, timeArg(since))
	if err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	for rows.Next() {
		var r latchkey.RevokedSession
		if err := rows.Scan(&r.ID, timeCol{&r.RevokedAt}); err != nil {
			rows.Close()
			return nil, fmt.Errorf("revocations: %w", err)
		}
		out.Sessions = append(out.Sessions, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	rows, err = s.query(ctx, `SELECT id, generation, generation_at FROM users WHERE generation_at >= ? ORDER BY generation_at, id`, timeArg(since))
	if err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r latchkey.UserRevocation
		if err := rows.Scan(&r.UserID, &r.Generation, timeCol{&r.At}); err != nil {
			return nil, fmt.Errorf("revocations: %w", err)
		}
		out.Users = append(out.Users, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revocations: %w", err)
	}
	return out, nil
}
