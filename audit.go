package latchkey

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// AuditType is what happened, one of the contract's audit event types.
type AuditType string

// The contract's audit events.
const (
	AuditLoginSucceeded       AuditType = "login_succeeded"
	AuditLoginFailed          AuditType = "login_failed"
	AuditLoginThrottled       AuditType = "login_throttled"
	AuditRegistered           AuditType = "registered"
	AuditRefreshReuseDetected AuditType = "refresh_reuse_detected"
	AuditLogout               AuditType = "logout"
	AuditLogoutAll            AuditType = "logout_all"
	AuditUserCreated          AuditType = "user_created"
	AuditUserUpdated          AuditType = "user_updated"
	AuditSessionsRevoked      AuditType = "sessions_revoked"
	AuditKeyRotated           AuditType = "key_rotated"
	AuditKeyRetired           AuditType = "key_retired"
	AuditPasswordReset        AuditType = "password_reset"
	AuditPasswordChanged      AuditType = "password_changed"
	AuditSessionEnded         AuditType = "session_ended"
	AuditTOTPEnabled          AuditType = "totp_enabled"
	AuditTOTPDisabled         AuditType = "totp_disabled"
	AuditMFAFailed            AuditType = "mfa_failed"
	AuditRecoveryCodeUsed     AuditType = "recovery_code_used"
)

// AuditTypes lists every type, for validating a filter.
var AuditTypes = []AuditType{
	AuditLoginSucceeded, AuditLoginFailed, AuditLoginThrottled, AuditRegistered,
	AuditRefreshReuseDetected, AuditLogout, AuditLogoutAll, AuditUserCreated,
	AuditUserUpdated, AuditSessionsRevoked, AuditKeyRotated, AuditKeyRetired,
	AuditPasswordReset, AuditPasswordChanged, AuditSessionEnded, AuditTOTPEnabled,
	AuditTOTPDisabled, AuditMFAFailed, AuditRecoveryCodeUsed,
}

// AuditEvent is one security event. It never holds a password or a token:
// Detail is a short sentence built by Latchkey, never raw input.
type AuditEvent struct {
	ID        string // UUIDv7: unique, and ordered by time (the list cursor)
	At        time.Time
	Type      AuditType
	UserID    string // the user the event is about; "" if none is known
	SessionID string
	IP        string
	UserAgent string
	Detail    string
}

// AuditQuery filters ListAudit. Events come newest first.
type AuditQuery struct {
	UserID string    // "" for any
	Type   AuditType // "" for any
	Before string    // only events whose ID sorts before this one ("" for the newest)
	Limit  int       // at most this many; none if <= 0
}

// DefaultAuditRetention is how long audit events are kept
// (LATCHKEY_AUDIT_RETENTION).
const DefaultAuditRetention = 90 * 24 * time.Hour

// auditBatch bounds one write and one purge statement, so that neither
// holds the database for long.
const auditBatch = 500

// maxAuditPending bounds memory when the database refuses audit writes
// for a long time: past it, the oldest pending events are dropped (they
// are in the structured log already) with one warning per batch dropped.
const maxAuditPending = 20000

// AuditLog records security events: each is written as a structured log
// line at once and stored in the database in batches by Run, off the
// request path, so recording costs a login or a refresh no database
// round trip. A failed write is logged and retried on the next batch; it
// never fails the request that caused the event (docs/decisions.md).
type AuditLog struct {
	store  Store
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	pending []*AuditEvent
	wake    chan struct{}
	// writing serialises Flush and Run's writes, so events are stored in
	// the order they were recorded.
	writing sync.Mutex
	// observe, when set, is told of every event as it is recorded.
	observe func(AuditEvent)
}

// Observe makes Record call f with every event, for metrics. Call it
// before the log is in use; f must be quick.
func (a *AuditLog) Observe(f func(AuditEvent)) { a.observe = f }

// NewAuditLog returns an AuditLog over store. logger gets one line per
// event; now defaults to time.Now.
func NewAuditLog(store Store, logger *slog.Logger, now func() time.Time) *AuditLog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &AuditLog{store: store, logger: logger, now: now, wake: make(chan struct{}, 1)}
}

// Record logs e and queues it for the database, filling its ID and time.
func (a *AuditLog) Record(ctx context.Context, e AuditEvent) {
	e.ID = newID()
	e.At = a.now().UTC().Truncate(time.Microsecond)
	e.UserAgent = truncate(e.UserAgent, maxUserAgent)
	a.logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("event", string(e.Type)), slog.String("event_id", e.ID),
		slog.String("user_id", e.UserID), slog.String("session_id", e.SessionID),
		slog.String("ip", e.IP), slog.String("detail", e.Detail))
	if a.observe != nil {
		a.observe(e)
	}
	a.mu.Lock()
	a.pending = append(a.pending, &e)
	if over := len(a.pending) - maxAuditPending; over > 0 {
		a.pending = a.pending[over:]
		a.logger.WarnContext(ctx, "audit events dropped from the database queue; they remain in the log", "count", over)
	}
	full := len(a.pending) >= auditBatch
	a.mu.Unlock()
	if full {
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// Flush stores every pending event now. Run does it on its own; List
// calls it first, so that an admin reading the log sees what this replica
// has just recorded.
func (a *AuditLog) Flush(ctx context.Context) error {
	a.writing.Lock()
	defer a.writing.Unlock()
	for {
		a.mu.Lock()
		n := min(len(a.pending), auditBatch)
		batch := a.pending[:n:n]
		a.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := a.store.AppendAudit(ctx, batch); err != nil {
			return err
		}
		a.mu.Lock()
		// Record only appends, and a drop for overflow only happens under
		// a failing store, so the batch is still the queue's head unless
		// overflow cut into it; remove what is still there.
		drop := 0
		for drop < n && drop < len(a.pending) && a.pending[drop] == batch[drop] {
			drop++
		}
		a.pending = a.pending[drop:]
		a.mu.Unlock()
	}
}

// Run stores pending events every interval (or sooner when a batch is
// full) until ctx ends, then flushes what is left with a short deadline.
func (a *AuditLog) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := a.Flush(fctx); err != nil {
				a.logger.Error("audit events not stored at shutdown; they remain in the log", "err", err)
			}
			cancel()
			return
		case <-t.C:
		case <-a.wake:
		}
		err := a.Flush(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			a.logger.Error("audit events not stored; retrying, and they remain in the log", "err", err)
		case err == nil && failing:
			failing = false
			a.logger.Info("audit events stored again")
		}
	}
}

// List returns events matching q, newest first, after flushing this
// replica's pending ones.
func (a *AuditLog) List(ctx context.Context, q AuditQuery) ([]*AuditEvent, error) {
	if err := a.Flush(ctx); err != nil {
		return nil, err
	}
	return a.store.ListAudit(ctx, q)
}

// Purge deletes events older than retention in batches and returns how
// many it deleted. Several replicas may purge at once.
func (a *AuditLog) Purge(ctx context.Context, retention time.Duration) (int, error) {
	before := a.now().UTC().Add(-retention)
	total := 0
	for {
		n, err := a.store.DeleteAuditBefore(ctx, before, auditBatch)
		total += n
		if err != nil || n < auditBatch {
			return total, err
		}
	}
}
