package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// PutTOTP implements latchkey.Store: the upsert's WHERE leaves an
// enabled enrolment alone, and no row changed means it was one.
func (s *Store) PutTOTP(ctx context.Context, t *latchkey.TOTP) error {
	res, err := s.exec(ctx, `
		INSERT INTO totp (user_id, secret, sealed, created_at, enabled_at, last_step)
		VALUES (?, ?, ?, ?, NULL, 0)
		ON CONFLICT (user_id) DO UPDATE SET
			secret = excluded.secret, sealed = excluded.sealed, created_at = excluded.created_at, last_step = 0
		WHERE totp.enabled_at IS NULL`,
		t.UserID, t.Secret, t.Sealed, timeArg(t.CreatedAt))
	n, err := affected(res, err)
	if err != nil {
		return fmt.Errorf("put totp: %w", constraintErr(err))
	}
	if n == 0 {
		return fmt.Errorf("put totp: %w", latchkey.ErrConflict)
	}
	return nil
}

// TOTP implements latchkey.Store.
func (s *Store) TOTP(ctx context.Context, userID string) (*latchkey.TOTP, error) {
	return s.oneTOTP(ctx, "totp", `SELECT `+totpColumns+` FROM totp WHERE user_id = ?`, userID)
}

// SealedTOTP implements latchkey.Store.
func (s *Store) SealedTOTP(ctx context.Context) (*latchkey.TOTP, error) {
	return s.oneTOTP(ctx, "sealed totp", `SELECT `+totpColumns+` FROM totp WHERE sealed = 1 LIMIT 1`)
}

const totpColumns = `user_id, secret, sealed, created_at, enabled_at, last_step`

func (s *Store) oneTOTP(ctx context.Context, what, query string, args ...any) (*latchkey.TOTP, error) {
	var t latchkey.TOTP
	err := s.queryRow(ctx, query, args...).
		Scan(&t.UserID, &t.Secret, &t.Sealed, timeCol{&t.CreatedAt}, timeCol{&t.EnabledAt}, &t.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return &t, nil
}

// EnableTOTP implements latchkey.Store in one write transaction (BEGIN
// IMMEDIATE), so the enrolment and its recovery codes appear together.
func (s *Store) EnableTOTP(ctx context.Context, userID string, secret []byte, at time.Time, step int64, recovery [][]byte) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := s.updateTOTP(ctx, tx, userID, `UPDATE totp SET enabled_at = ?, last_step = ? WHERE user_id = ? AND enabled_at IS NULL AND secret = ?`,
			timeArg(at), step, userID, secret)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, h := range recovery {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`, userID, h); err != nil {
				return constraintErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("enable totp: %w", err)
	}
	return nil
}

// totpMissing tells why a conditional update of the user's enrolment
// changed nothing: ErrNotFound without one, else ErrConflict.
func (s *Store) totpMissing(ctx context.Context, tx *sql.Tx, userID string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM totp WHERE user_id = ?`, userID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return latchkey.ErrNotFound
	}
	if err != nil {
		return err
	}
	return latchkey.ErrConflict
}

// DeleteTOTP implements latchkey.Store.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := oneRow(tx.ExecContext(ctx, `DELETE FROM totp WHERE user_id = ?`, userID)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete totp: %w", err)
	}
	return nil
}

// UseTOTPStep implements latchkey.Store: one conditional UPDATE, which
// SQLite runs under its write lock, so of two callers with one step the
// second sees last_step already there.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.updateTOTP(ctx, tx, userID, `UPDATE totp SET last_step = ? WHERE user_id = ? AND enabled_at IS NOT NULL AND last_step < ?`,
			step, userID, step)
	})
	if err != nil {
		return fmt.Errorf("use totp step: %w", err)
	}
	return nil
}

// updateTOTP runs one conditional UPDATE of the user's enrolment in tx;
// when it changes nothing, totpMissing says why.
func (s *Store) updateTOTP(ctx context.Context, tx *sql.Tx, userID, query string, args ...any) error {
	if err := oneRow(tx.ExecContext(ctx, query, args...)); !errors.Is(err, latchkey.ErrNotFound) {
		return err
	}
	return s.totpMissing(ctx, tx, userID)
}

// UseRecoveryCode implements latchkey.Store.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	err := oneRow(s.exec(ctx, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`,
		timeArg(at), userID, hash))
	if err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	return nil
}

// RecoveryCodesLeft implements latchkey.Store.
func (s *Store) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("recovery codes left: %w", err)
	}
	return n, nil
}

// CreateMFAChallenge implements latchkey.Store.
func (s *Store) CreateMFAChallenge(ctx context.Context, c *latchkey.MFAChallenge) error {
	_, err := s.exec(ctx, `INSERT INTO mfa_challenges (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		c.Hash, c.UserID, timeArg(c.CreatedAt), timeArg(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create mfa challenge: %w", constraintErr(err))
	}
	return nil
}

// MFAChallenge implements latchkey.Store.
func (s *Store) MFAChallenge(ctx context.Context, hash []byte) (*latchkey.MFAChallenge, error) {
	var c latchkey.MFAChallenge
	err := s.queryRow(ctx, `SELECT hash, user_id, created_at, expires_at FROM mfa_challenges WHERE hash = ?`, hash).
		Scan(&c.Hash, &c.UserID, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("mfa challenge: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("mfa challenge: %w", err)
	}
	return &c, nil
}

// DeleteMFAChallenge implements latchkey.Store.
func (s *Store) DeleteMFAChallenge(ctx context.Context, hash []byte) error {
	if err := oneRow(s.exec(ctx, `DELETE FROM mfa_challenges WHERE hash = ?`, hash)); err != nil {
		return fmt.Errorf("delete mfa challenge: %w", err)
	}
	return nil
}

// DeleteExpiredMFAChallenges implements latchkey.Store. Challenges live
// five minutes and the sweep runs often, so one statement deletes few rows.
func (s *Store) DeleteExpiredMFAChallenges(ctx context.Context, before time.Time) (int, error) {
	n, err := affected(s.exec(ctx, `DELETE FROM mfa_challenges WHERE expires_at < ?`, timeArg(before)))
	if err != nil {
		return 0, fmt.Errorf("delete expired mfa challenges: %w", err)
	}
	return n, nil
}

// SealTOTP implements latchkey.Store.
func (s *Store) SealTOTP(ctx context.Context, userID string, sealed []byte) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return s.updateTOTP(ctx, tx, userID, `UPDATE totp SET secret = ?, sealed = 1 WHERE user_id = ? AND sealed = 0`, sealed, userID)
	})
	if err != nil {
		return fmt.Errorf("seal totp: %w", err)
	}
	return nil
}
