package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

// createSession inserts the session and records its first token in one
// statement: the CTE's insert and the main one commit together or not at
// all, in one round trip.
const createSession = `
	WITH created AS (
		INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at,
			revoked_at, revoke_reason, user_agent, ip,
			current_hash, previous_hash, previous_retired_at, previous_successor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		RETURNING id, current_hash, created_at
	)
	INSERT INTO refresh_tokens (hash, session_id, issued_at)
	SELECT current_hash, id, created_at FROM created`

// CreateSession implements latchkey.Store: an unknown user violates the
// foreign key (ErrNotFound), a taken session id or token hash a unique
// index (ErrConflict).
func (s *Store) CreateSession(ctx context.Context, sess *latchkey.Session) error {
	_, err := s.pool.Exec(ctx, createSession,
		sess.ID, sess.UserID, timeArg(sess.CreatedAt), timeArg(sess.LastUsedAt), timeArg(sess.ExpiresAt),
		timeArg(sess.RevokedAt), sess.RevokeReason, sess.UserAgent, sess.IP,
		sess.CurrentHash, sess.PreviousHash, timeArg(sess.PreviousRetiredAt), sess.PreviousSuccessor)
	if err != nil {
		return fmt.Errorf("create session: %w", constraintErr(err))
	}
	return nil
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

func scanSession(row pgx.Row) (*latchkey.Session, error) {
	var x latchkey.Session
	if err := row.Scan(sessionDest(&x)...); err != nil {
		return nil, err
	}
	return &x, nil
}

// Session implements latchkey.Store.
func (s *Store) Session(ctx context.Context, id string) (*latchkey.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions s WHERE s.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return sess, nil
}

const sessionByTokenHash = `
	SELECT ` + sessionColumns + `
	FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
	WHERE t.hash = $1`

// SessionByTokenHash implements latchkey.Store. refresh_tokens holds every
// token of every kept session, so one primary-key lookup covers current,
// previous and older tokens alike.
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (*latchkey.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, sessionByTokenHash, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("session by token hash: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("session by token hash: %w", err)
	}
	return sess, nil
}

// sessionAndUserByTokenHash is the refresh path's read: three primary-key
// lookups joined.
const sessionAndUserByTokenHash = `
	SELECT ` + sessionColumns + `, ` + userColumns + `
	FROM refresh_tokens t
		JOIN sessions s ON s.id = t.session_id
		JOIN users u ON u.id = s.user_id
	WHERE t.hash = $1`

// SessionAndUserByTokenHash implements latchkey.Store.
func (s *Store) SessionAndUserByTokenHash(ctx context.Context, hash []byte) (*latchkey.Session, *latchkey.User, error) {
	var (
		x    latchkey.Session
		u    latchkey.User
		role string
	)
	err := s.pool.QueryRow(ctx, sessionAndUserByTokenHash, hash).
		Scan(append(sessionDest(&x), userDest(&u, &role)...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("session and user by token hash: %w", latchkey.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("session and user by token hash: %w", err)
	}
	u.Role = latchkey.Role(role)
	return &x, &u, nil
}

// listSessions uses sessions_user_created, whose order is the result's.
const listSessions = `
	SELECT ` + sessionColumns + ` FROM sessions s
	WHERE s.user_id = $1 AND s.revoked_at IS NULL
	ORDER BY s.created_at DESC, s.id DESC`

// ListSessions implements latchkey.Store.
func (s *Store) ListSessions(ctx context.Context, userID string) ([]*latchkey.Session, error) {
	rows, err := s.pool.Query(ctx, listSessions, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*latchkey.Session, error) {
		return scanSession(row)
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return list, nil
}

// rotateSession is the compare-and-swap and the record of the new token in
// one statement (see doc.go). At READ COMMITTED a concurrent rotation that
// committed first makes this UPDATE re-check its WHERE clause against the
// new row and match nothing; the INSERT then inserts nothing. The last
// SELECT tells a lost race or a revoked session (ErrConflict) from a
// session that does not exist (ErrNotFound). A NewHash already issued
// violates the primary key of refresh_tokens, which undoes the UPDATE too.
const rotateSession = `
	WITH rotated AS (
		UPDATE sessions SET
			previous_hash = current_hash,
			previous_retired_at = $3,
			previous_successor = $4,
			current_hash = $5,
			last_used_at = $3,
			expires_at = $6
		WHERE id = $1 AND current_hash = $2 AND revoked_at IS NULL
		RETURNING id
	), recorded AS (
		INSERT INTO refresh_tokens (hash, session_id, issued_at)
		SELECT $5, id, $3 FROM rotated
		RETURNING 1
	)
	SELECT EXISTS (SELECT 1 FROM recorded), EXISTS (SELECT 1 FROM sessions WHERE id = $1)`

// RotateRefreshToken implements latchkey.Store. An error other than
// ErrConflict and ErrNotFound (a lost connection, a canceled context)
// leaves the outcome unknown to the caller, as with any network database,
// but never half done: the statement committed both of its rows or none.
func (s *Store) RotateRefreshToken(ctx context.Context, r latchkey.Rotation) error {
	var rotated, exists bool
	err := s.pool.QueryRow(ctx, rotateSession,
		r.SessionID, r.OldHash, timeArg(r.At), r.SealedSuccessor, r.NewHash, timeArg(r.ExpiresAt),
	).Scan(&rotated, &exists)
	switch {
	case err != nil:
		return fmt.Errorf("rotate refresh token: %w", constraintErr(err))
	case rotated:
		return nil
	case !exists:
		return fmt.Errorf("rotate refresh token: %w", latchkey.ErrNotFound)
	default:
		// Revoked, or its current token is no longer OldHash.
		return fmt.Errorf("rotate refresh token: %w", latchkey.ErrConflict)
	}
}

// revokeSession reports whether the session exists, revoking it unless it
// is revoked already, in one round trip.
const revokeSession = `
	WITH revoked AS (
		UPDATE sessions SET revoked_at = $2, revoke_reason = $3
		WHERE id = $1 AND revoked_at IS NULL
		RETURNING 1
	)
	SELECT EXISTS (SELECT 1 FROM revoked) OR EXISTS (SELECT 1 FROM sessions WHERE id = $1)`

// RevokeSession implements latchkey.Store.
func (s *Store) RevokeSession(ctx context.Context, id string, at time.Time, reason string) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, revokeSession, id, timeArg(at), reason).Scan(&exists); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	if !exists {
		return fmt.Errorf("revoke session: %w", latchkey.ErrNotFound)
	}
	return nil
}

// revokeUserSessions finds the user's sessions through sessions_user_created.
const revokeUserSessions = `
	UPDATE sessions SET revoked_at = $2, revoke_reason = $3
	WHERE user_id = $1 AND revoked_at IS NULL AND id <> $4`

// RevokeUserSessions implements latchkey.Store.
func (s *Store) RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error) {
	tag, err := s.pool.Exec(ctx, revokeUserSessions, userID, timeArg(at), reason, except)
	if err != nil {
		return 0, fmt.Errorf("revoke user sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// purgeBatch is how many sessions one DELETE removes at most. Each batch
// commits on its own, so the purge never holds many row locks, nor one
// transaction open for long.
const purgeBatch = 1000

// deleteExpiredBatch deletes up to $2 sessions that expired before $1,
// oldest first, with their tokens (ON DELETE CASCADE). The ORDER BY lets
// the planner walk sessions_expires and stop after $2 rows even with a
// generic plan, instead of scanning the table for a few expired rows.
// SKIP LOCKED passes over rows another replica's purge (or a rotation) has
// locked, so concurrent purges neither wait for nor count each other.
// = ANY(ARRAY(...)) rather than IN (...): with IN the planner hashes the
// batch and joins it against a scan of the whole table.
const deleteExpiredBatch = `
	DELETE FROM sessions WHERE id = ANY (ARRAY (
		SELECT id FROM sessions
		WHERE expires_at < $1
		ORDER BY expires_at
		LIMIT $2
		FOR UPDATE SKIP LOCKED
	))`

// DeleteExpiredSessions implements latchkey.Store, in batches of
// purgeBatch sessions. On an error it returns how many sessions the
// batches before it deleted; those stay deleted.
func (s *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, deleteExpiredBatch, timeArg(before), purgeBatch)
		if err != nil {
			return total, fmt.Errorf("delete expired sessions: %w", err)
		}
		n := int(tag.RowsAffected())
		total += n
		// A short batch means nothing is left that another purge has not
		// locked: done.
		if n < purgeBatch {
			return total, nil
		}
	}
}
