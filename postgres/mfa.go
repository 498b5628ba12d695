package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey-dev/latchkey"
)

// PutTOTP implements latchkey.Store: the upsert's WHERE leaves an
// enabled enrolment alone, and no row changed means it was one.
func (s *Store) PutTOTP(ctx context.Context, t *latchkey.TOTP) error {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO totp (user_id, secret, sealed, created_at, enabled_at, last_step)
		VALUES ($1, $2, $3, $4, NULL, 0)
		ON CONFLICT (user_id) DO UPDATE SET
			secret = excluded.secret, sealed = excluded.sealed, created_at = excluded.created_at, last_step = 0
		WHERE totp.enabled_at IS NULL`,
		t.UserID, t.Secret, t.Sealed, timeArg(t.CreatedAt))
	if err != nil {
		return fmt.Errorf("put totp: %w", constraintErr(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put totp: %w", latchkey.ErrConflict)
	}
	return nil
}

// TOTP implements latchkey.Store.
func (s *Store) TOTP(ctx context.Context, userID string) (*latchkey.TOTP, error) {
	return s.oneTOTP(ctx, "totp", `SELECT `+totpColumns+` FROM totp WHERE user_id = $1`, userID)
}

// SealedTOTP implements latchkey.Store.
func (s *Store) SealedTOTP(ctx context.Context) (*latchkey.TOTP, error) {
	return s.oneTOTP(ctx, "sealed totp", `SELECT `+totpColumns+` FROM totp WHERE sealed LIMIT 1`)
}

const totpColumns = `user_id, secret, sealed, created_at, enabled_at, last_step`

func (s *Store) oneTOTP(ctx context.Context, what, query string, args ...any) (*latchkey.TOTP, error) {
	var t latchkey.TOTP
	err := s.pool.QueryRow(ctx, query, args...).
		Scan(&t.UserID, &t.Secret, &t.Sealed, timeCol{&t.CreatedAt}, timeCol{&t.EnabledAt}, &t.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &t, nil
}

// EnableTOTP implements latchkey.Store in one transaction, so the
// enrolment and its recovery codes appear together.
func (s *Store) EnableTOTP(ctx context.Context, userID string, secret []byte, at time.Time, step int64, recovery [][]byte) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := updateTOTP(ctx, tx, userID, `UPDATE totp SET enabled_at = $1, last_step = $2 WHERE user_id = $3 AND enabled_at IS NULL AND secret = $4`,
			timeArg(at), step, userID, secret)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, hash) SELECT $1, unnest($2::bytea[])`, userID, recovery)
		return constraintErr(err)
	})
	if err != nil {
		return fmt.Errorf("enable totp: %w", err)
	}
	return nil
}

// querier is what the pool and a transaction both offer.
type querier interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}

// updateTOTP runs one conditional UPDATE of the user's enrolment; when it
// changes nothing, totpMissing says why.
func updateTOTP(ctx context.Context, q querier, userID, query string, args ...any) error {
	if err := oneRow(q.Exec(ctx, query, args...)); !errors.Is(err, latchkey.ErrNotFound) {
		return err
	}
	return totpMissing(ctx, q, userID)
}

// totpMissing tells why a conditional update of the user's enrolment
// changed nothing: ErrNotFound without one, else ErrConflict.
func totpMissing(ctx context.Context, q querier, userID string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM totp WHERE user_id = $1`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return latchkey.ErrNotFound
	}
	if err != nil {
		return err
	}
	return latchkey.ErrConflict
}

// DeleteTOTP implements latchkey.Store.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := oneRow(tx.Exec(ctx, `DELETE FROM totp WHERE user_id = $1`, userID)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete totp: %w", err)
	}
	return nil
}

// UseTOTPStep implements latchkey.Store: one conditional UPDATE. Under
// READ COMMITTED a second caller with the same step waits for the first's
// row lock, then rechecks last_step < step against the committed row and
// changes nothing, so exactly one of them succeeds.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	err := updateTOTP(ctx, s.pool, userID, `UPDATE totp SET last_step = $1 WHERE user_id = $2 AND enabled_at IS NOT NULL AND last_step < $1`,
		step, userID)
	if err != nil {
		return fmt.Errorf("use totp step: %w", err)
	}
	return nil
}

// UseRecoveryCode implements latchkey.Store.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	err := oneRow(s.pool.Exec(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND hash = $3 AND used_at IS NULL`,
		timeArg(at), userID, hash))
	if err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	return nil
}

// RecoveryCodesLeft implements latchkey.Store.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("recovery codes left: %w", err)
	}
	return n, nil
}

// CreateMFAChallenge implements latchkey.Store.
func (s *Store) CreateMFAChallenge(ctx context.Context, c *latchkey.MFAChallenge) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO mfa_challenges (hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
		c.Hash, c.UserID, timeArg(c.CreatedAt), timeArg(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create mfa challenge: %w", constraintErr(err))
	}
	return nil
}

// MFAChallenge implements latchkey.Store.
func (s *Store) MFAChallenge(ctx context.Context, hash []byte) (*latchkey.MFAChallenge, error) {
	var c latchkey.MFAChallenge
	err := s.pool.QueryRow(ctx, `SELECT hash, user_id, created_at, expires_at FROM mfa_challenges WHERE hash = $1`, hash).
		Scan(&c.Hash, &c.UserID, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("mfa challenge: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mfa challenge: %w", err)
	}
	return &c, nil
}

// DeleteMFAChallenge implements latchkey.Store.
func (s *Store) DeleteMFAChallenge(ctx context.Context, hash []byte) error {
	if err := oneRow(s.pool.Exec(ctx, `DELETE FROM mfa_challenges WHERE hash = $1`, hash)); err != nil {
		return fmt.Errorf("delete mfa challenge: %w", err)
	}
	return nil
}

// DeleteExpiredMFAChallenges implements latchkey.Store. Challenges live
// five minutes and the sweep runs often, so one statement deletes few
// rows; replicas sweeping at once delete disjoint rows or wait briefly.
func (s *Store) DeleteExpiredMFAChallenges(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM mfa_challenges WHERE expires_at < $1`, timeArg(before))
	if err != nil {
		return 0, fmt.Errorf("delete expired mfa challenges: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// SealTOTP implements latchkey.Store.
func (s *Store) SealTOTP(ctx context.Context, userID string, sealed []byte) error {
	if err := updateTOTP(ctx, s.pool, userID, `UPDATE totp SET secret = $1, sealed = true WHERE user_id = $2 AND NOT sealed`, sealed, userID); err != nil {
		return fmt.Errorf("seal totp: %w", err)
	}
	return nil
}
