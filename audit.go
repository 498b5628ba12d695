package latchkey

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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
// line at once (repeated ones once a minute, see RecordRepeated) and
// stored in the database in batches by Run, off the request path, so
// recording costs a login or a refresh no database round trip. A failed write is logged and retried on the next batch; it
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
	// repeated tracks the keys of RecordRepeated, under mu.
	repeated map[string]*repeats
}

// A client the throttle refuses is refused as fast as it asks: a
// wrong-password flood from 64 addresses on loopback made 117,808
// login_throttled events in 5 s, 83 MB of database kept for the
// retention. Of the events under one key, RecordRepeated records one per
// repeatWindow, which says how many it stands for.
const (
	repeatWindow = time.Minute
	// maxRepeatKeys bounds the keys tracked at once, each holding one
	// event of a few hundred bytes (its user agent truncated); an event
	// under a new key past it is recorded as it comes, as Record would.
	maxRepeatKeys = 10000
)

// repeats is what RecordRepeated holds for one key.
type repeats struct {
	// since is when the key's last record was made, as the clock read it:
	// with time.Now's monotonic reading, so that a step of the wall clock
	// neither stretches nor shortens a window.
	since time.Time
	held  int        // events since then not recorded
	last  AuditEvent // the latest of them
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
	return &AuditLog{store: store, logger: logger, now: now, wake: make(chan struct{}, 1), repeated: map[string]*repeats{}}
}

// Record logs e and queues it for the database, filling its ID and time.
func (a *AuditLog) Record(ctx context.Context, e AuditEvent) {
	e.At = stamp(a.now())
	if a.observe != nil {
		a.observe(e)
	}
	a.queue(ctx, e)
}

// RecordRepeated is Record for an event a client can repeat at will, such
// as a throttled login; key says which events are the same one. Of those
// under one key, the first is recorded; the ones in the next repeatWindow
// are counted, and the key's next record, the first event after the
// window, says "and N more since" the last record. Once the window has
// passed with events counted, the first Flush records the last of them,
// with its own time, saying how many more it stands for (its ID, taken
// then, sorts it among the events recorded at that moment); Run's
// shutdown records what every key holds. Every event is counted in
// exactly one record, and observers (metrics) see each one as it comes;
// the structured log has the records, not the events counted in them.
func (a *AuditLog) RecordRepeated(ctx context.Context, e AuditEvent, key string) {
	now := a.now()
	e.At = stamp(now)
	if a.observe != nil {
		a.observe(e)
	}
	a.mu.Lock()
	r, ok := a.repeated[key]
	switch {
	case ok && now.Sub(r.since) < repeatWindow:
		e.UserAgent = truncate(e.UserAgent, maxUserAgent)
		r.held++
		r.last = e
		a.mu.Unlock()
		return
	case ok:
		e.Detail += moreSince(r.held, r.since)
		r.since, r.held = now, 0
	case len(a.repeated) < maxRepeatKeys:
		a.repeated[key] = &repeats{since: now}
	}
	a.mu.Unlock()
	a.queue(ctx, e)
}

// releaseHeld records the last event held under each key whose window
// has passed, or under every key if all, and forgets those keys.
func (a *AuditLog) releaseHeld(ctx context.Context, all bool) {
	now := a.now()
	var held []AuditEvent
	a.mu.Lock()
	for key, r := range a.repeated {
		if !all && now.Sub(r.since) < repeatWindow {
			continue
		}
		if r.held > 0 {
			r.last.Detail += moreSince(r.held-1, r.since)
			held = append(held, r.last)
		}
		delete(a.repeated, key)
	}
	a.mu.Unlock()
	slices.SortFunc(held, func(x, y AuditEvent) int { return x.At.Compare(y.At) })
	for _, e := range held {
		a.queue(ctx, e)
	}
}

// moreSince is the note a record of a repeated event carries for the n
// events since the key's last record that it stands for.
func moreSince(n int, since time.Time) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; and %d more since %s", n, since.UTC().Format(time.RFC3339))
}

// queue logs e and appends it to the events waiting for the database,
// giving it its ID.
func (a *AuditLog) queue(ctx context.Context, e AuditEvent) {
	e.ID = newID()
	e.UserAgent = truncate(e.UserAgent, maxUserAgent)
	a.logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.String("event", string(e.Type)), slog.String("event_id", e.ID),
		slog.String("user_id", e.UserID), slog.String("session_id", e.SessionID),
		slog.String("ip", e.IP), slog.String("detail", e.Detail))
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
	a.releaseHeld(ctx, false)
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
		clear(a.pending[:drop]) // the stored events, which the array would keep alive
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
			// What RecordRepeated holds would be lost with the process.
			a.releaseHeld(ctx, true)
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
