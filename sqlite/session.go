package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// The statements run inside write transactions. Open prepares them, since
// preparing one lazily inside a transaction would need a second pooled
// connection, which ":memory:" does not have and a busy pool may not free.
const (
	insertSession = `
		INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at,
			revoked_at, revoke_reason, user_agent, ip,
			current_hash, previous_hash, previous_retired_at, previous_successor)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertRefreshToken = `INSERT INTO refresh_tokens (hash, session_id, issued_at) VALUES (?, ?, ?)`
	rotateSession      = `
		UPDATE sessions SET
			previous_hash = current_hash,
			previous_retired_at = ?,
			previous_successor = ?,
			current_hash = ?,
			last_used_at = ?,
			expires_at = ?
		WHERE id = ? AND current_hash = ? AND revoked_at IS NULL`
)

// txQueries are the statements Open prepares.
var txQueries = []string{
	insertSession, insertRefreshToken, rotateSession,
	deleteRefreshToken,
}

// CreateSession implements latchkey.Store.
func (s *Store) CreateSession(ctx context.Context, sess *latchkey.Session) error {
	if err := s.createSession(ctx, sess); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

func (s *Store) createSession(ctx context.Context, sess *latchkey.Session) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.txExec(ctx, tx, insertSession,
			sess.ID, sess.UserID, timeArg(sess.CreatedAt), timeArg(sess.LastUsedAt), timeArg(sess.ExpiresAt),
			timeArg(sess.RevokedAt), sess.RevokeReason, sess.UserAgent, sess.IP,
			sess.CurrentHash, sess.PreviousHash, timeArg(sess.PreviousRetiredAt), sess.PreviousSuccessor)
		if err := constraintErr(err); err != nil {
			return err
		}
		_, err = s.txExec(ctx, tx, insertRefreshToken, sess.CurrentHash, sess.ID, timeArg(sess.CreatedAt))
		return constraintErr(err)
	})
}

// constraintErr maps a duplicate to ErrConflict and a missing parent row
// (the user of a new session) to ErrNotFound, keeping the driver's error
// in the chain for the log.
func constraintErr(err error) error {
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return fmt.Errorf("%w: %w", latchkey.ErrConflict, err)
	case isForeignKey(err):
		return fmt.Errorf("%w: %w", latchkey.ErrNotFound, err)
	default:
		return err
	}
}

const sessionColumns = `s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at,
	s.revoked_at, s.revoke_reason, s.user_agent, s.ip,
	s.current_hash, s.previous_hash, s.previous_retired_at, s.previous_successor`

// sessionDest is where a row of sessionColumns goes.
func sessionDest(x *latchkey.Session) []any {
	return []any{&x.ID, &x.UserID, timeCol{&x.CreatedAt}, timeCol{&x.LastUsedAt}, timeCol{&x.ExpiresAt},
		timeCol{&x.RevokedAt}, &x.RevokeReason, &x.UserAgent, &x.IP,
		&x.CurrentHash, &x.PreviousHash, timeCol{&x.PreviousRetiredAt}, &x.PreviousSuccessor}
}

func scanSession(row interface{ Scan(...any) error }) (*latchkey.Session, error) {
	var x latchkey.Session
	if err := row.Scan(sessionDest(&x)...); err != nil {
		return nil, err
	}
	return &x, nil
}

// Session implements latchkey.Store.
func (s *Store) Session(ctx context.Context, id string) (*latchkey.Session, error) {
	sess, err := scanSession(s.queryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions s WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return sess, nil
}

// SessionByTokenHash implements latchkey.Store. refresh_tokens holds every
// token of every kept session, so one lookup covers current, previous and
// older tokens alike.
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (*latchkey.Session, error) {
	sess, err := scanSession(s.queryRow(ctx, `
		SELECT `+sessionColumns+`
		FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
		WHERE t.hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session by token hash: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("session by token hash: %w", err)
	}
	return sess, nil
}

// SessionAndUserByTokenHash implements latchkey.Store.
func (s *Store) SessionAndUserByTokenHash(ctx context.Context, hash []byte) (*latchkey.Session, *latchkey.User, error) {
	var (
		x    latchkey.Session
		u    latchkey.User
		role string
	)
	err := s.queryRow(ctx, `
		SELECT `+sessionColumns+`, `+userColumns+`
		FROM refresh_tokens t
			JOIN sessions s ON s.id = t.session_id
			JOIN users u ON u.id = s.user_id
		WHERE t.hash = ?`, hash).Scan(append(sessionDest(&x), userDest(&u, &role)...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("session and user by token hash: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("session and user by token hash: %w", err)
	}
	u.Role = latchkey.Role(role)
	return &x, &u, nil
}

// ListSessions implements latchkey.Store.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]*latchkey.Session, error) {
	rows, err := s.query(ctx, `
		SELECT `+sessionColumns+` FROM sessions s
		WHERE s.user_id = ? AND s.revoked_at IS NULL
		ORDER BY s.created_at DESC, s.id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var list []*latchkey.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		list = append(list, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return list, nil
}

// exists returns nil if the session exists, else ErrNotFound.
func (s *Store) exists(ctx context.Context, id string) error {
	var ok bool
	if err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ?)`, id).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return latchkey.ErrNotFound
	}
	return nil
}

// RevokeSession implements latchkey.Store.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	n, err := affected(s.exec(ctx,
		`UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL`,
		timeArg(at), reason, id))
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if n == 0 {
		// Already revoked (the first revocation stands) or missing.
		if err := s.exists(ctx, id); err != nil {
			return fmt.Errorf("revoke session: %w", err)
		}
	}
	return nil
}

// revokeUserSessions revokes the live sessions of user ?3 but ?4, at ?1
// for reason ?2; SetPassword runs it too.
const revokeUserSessions = `UPDATE sessions SET revoked_at = ?, revoke_reason = ? WHERE user_id = ? AND revoked_at IS NULL AND id <> ?`

// RevokeUserSessions implements latchkey.Store.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error) {
	n, err := affected(s.exec(ctx, revokeUserSessions, timeArg(at), reason, userID, except))
	if err != nil {
		return 0, fmt.Errorf("revoke user sessions: %w", err)
	}
	return n, nil
}

// purgeBatch is how many sessions one DELETE of DeleteExpiredSessions
// removes at most. Each batch is a transaction of its own, so the purge
// holds the database's write lock, which every login and rotation waits
// for, for one batch at a time rather than for the whole backlog.
const purgeBatch = 1000

// DeleteExpiredSessions implements latchkey.Store, in batches of
// purgeBatch sessions, oldest first along sessions_expires. The foreign
// key's ON DELETE CASCADE removes each batch's refresh tokens in the same
// statement. A session without an expiry (NULL) is never deleted. On an
// error it returns how many sessions the batches before it deleted; those
// stay deleted.
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, err := affected(s.exec(ctx, `
			DELETE FROM sessions WHERE id IN (
				SELECT id FROM sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?
			)`, timeArg(before), purgeBatch))
		if err != nil {
			return total, fmt.Errorf("delete expired sessions: %w", err)
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}
