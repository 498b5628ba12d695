package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
)

// AppendAudit implements latchkey.Store: one batch, one transaction.
func (s *Store) AppendAudit(ctx context.Context, events []*latchkey.AuditEvent) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		for _, e := range events {
			b.Queue(`INSERT INTO audit_events (id, at, type, user_id, session_id, ip, user_agent, detail)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				e.ID, timeArg(e.At), string(e.Type), e.UserID, e.SessionID, e.IP, e.UserAgent, e.Detail)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("append audit: %w", constraintErr(err))
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
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if q.UserID != "" {
		where = append(where, "user_id = "+arg(q.UserID))
	}
	if q.Type != "" {
		where = append(where, "type = "+arg(string(q.Type)))
	}
	if q.Before != "" {
		where = append(where, "id < "+arg(q.Before))
	}
	query := `SELECT id, at, type, user_id, session_id, ip, user_agent, detail FROM audit_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY id DESC LIMIT " + arg(q.Limit)
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*latchkey.AuditEvent, error) {
		var e latchkey.AuditEvent
		var typ string
		if err := row.Scan(&e.ID, timeCol{&e.At}, &typ, &e.UserID, &e.SessionID, &e.IP, &e.UserAgent, &e.Detail); err != nil {
			return nil, err
		}
		e.Type = latchkey.AuditType(typ)
		return &e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return events, nil
}

// DeleteAuditBefore implements latchkey.Store. SKIP LOCKED lets replicas
// purging at once take different rows instead of waiting on each other;
// = ANY(ARRAY(...)) keeps the plan on the primary key where IN (...) made
// the planner scan the whole table.
func (s *Store) DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit_events WHERE id = ANY(ARRAY(
		SELECT id FROM audit_events WHERE at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED))`, before, limit)
	if err != nil {
		return 0, fmt.Errorf("delete audit: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
