package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// AppendAudit implements latchkey.Store, in one transaction.
func (s *Store) AppendAudit(ctx context.Context, events []*latchkey.AuditEvent) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range events {
			_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (id, at, type, user_id, session_id, ip, user_agent, detail)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				e.ID, timeArg(e.At), string(e.Type), e.UserID, e.SessionID, e.IP, e.UserAgent, e.Detail)
			if isUnique(err) {
				return fmt.Errorf("%s: %w", e.ID, latchkey.ErrConflict)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// ListAudit implements latchkey.Store.
func (s *Store) ListAudit(ctx context.Context, q latchkey.AuditQuery) ([]*latchkey.AuditEvent, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	var where []string
	var args []any
	if q.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, q.UserID)
	}
	if q.Type != "" {
		where, args = append(where, "type = ?"), append(args, string(q.Type))
	}
	if q.Before != "" {
		where, args = append(where, "id < ?"), append(args, q.Before)
	}
	query := `SELECT id, at, type, user_id, session_id, ip, user_agent, detail FROM audit_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT ?"
	rows, err := s.query(ctx, query, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []*latchkey.AuditEvent
	for rows.Next() {
		var e latchkey.AuditEvent
		var typ string
		if err := rows.Scan(&e.ID, timeCol{&e.At}, &typ, &e.UserID, &e.SessionID, &e.IP, &e.UserAgent, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.Type = latchkey.AuditType(typ)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}

// DeleteAuditBefore implements latchkey.Store: one bounded DELETE, so the
// write lock is held only for a batch.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := affected(s.exec(ctx, `DELETE FROM audit_events WHERE id IN
		(SELECT id FROM audit_events WHERE at < ? ORDER BY at LIMIT ?)`, timeArg(before), limit))
	if err != nil {
		return 0, fmt.Errorf("delete audit: %w", err)
	}
	return n, nil
}
