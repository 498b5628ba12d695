package latchkey_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// flakyAudit is a store whose audit writes fail while failing is set.
type flakyAudit struct {
	latchkey.Store
	failing atomic.Bool
	writes  atomic.Int64
}

func (f *flakyAudit) AppendAudit(ctx context.Context, events []*latchkey.AuditEvent) error {
	f.writes.Add(1)
	if f.failing.Load() {
		return errors.New("disk full")
	}
	return f.Store.AppendAudit(ctx, events)
}

func TestAuditLogSurvivesFailingWrites(t *testing.T) {
	e := newTestService(t, nil)
	store := &flakyAudit{Store: e.Store}
	var log strings.Builder
	a := latchkey.NewAuditLog(store, slog.New(slog.NewTextHandler(&log, nil)), e.Clock.Now)
	ctx := t.Context()

	store.failing.Store(true)
	a.Record(ctx, latchkey.AuditEvent{Type: latchkey.AuditLogout, UserID: "u1", Detail: "first"})
	if err := a.Flush(ctx); err == nil {
		t.Fatal("Flush with a failing store reported success")
	}
	if !strings.Contains(log.String(), "msg=audit event=logout") {
		t.Errorf("the event is not in the log although the database refused it: %q", log.String())
	}
	a.Record(ctx, latchkey.AuditEvent{Type: latchkey.AuditLogoutAll, UserID: "u1", Detail: "second"})

	store.failing.Store(false)
	got, err := a.List(ctx, latchkey.AuditQuery{Limit: 10})
	if err != nil || len(got) != 2 || got[0].Detail != "second" || got[1].Detail != "first" {
		t.Fatalf("after recovery: %d events, %v; want both, newest first, kept through the failure", len(got), err)
	}
	if !got[0].At.Equal(latchkeytest.Start) {
		t.Errorf("At = %v, want the injected clock's %v", got[0].At, latchkeytest.Start)
	}
}

func TestAuditLogRunStoresAndFlushesAtShutdown(t *testing.T) {
	e := newTestService(t, nil)
	store := &flakyAudit{Store: e.Store}
	a := latchkey.NewAuditLog(store, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { a.Run(ctx, time.Hour); close(done) }() // only a full batch or shutdown writes

	for range 600 { // more than one batch
		a.Record(t.Context(), latchkey.AuditEvent{Type: latchkey.AuditLoginFailed})
	}
	deadline := time.Now().Add(5 * time.Second)
	for store.writes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if store.writes.Load() == 0 {
		t.Fatal("a full batch was not written before the interval")
	}
	a.Record(t.Context(), latchkey.AuditEvent{Type: latchkey.AuditLogout})
	cancel()
	<-done
	got, err := store.Store.ListAudit(t.Context(), latchkey.AuditQuery{Limit: 1000})
	if err != nil || len(got) != 601 || got[0].Type != latchkey.AuditLogout {
		t.Errorf("stored %d events, %v; want all 601, the last recorded first", len(got), err)
	}
}

func TestAuditLogPurge(t *testing.T) {
	e := newTestService(t, nil)
	a := latchkey.NewAuditLog(e.Store, nil, e.Clock.Now)
	for range 3 {
		a.Record(t.Context(), latchkey.AuditEvent{Type: latchkey.AuditLogout})
	}
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(24 * time.Hour)
	a.Record(t.Context(), latchkey.AuditEvent{Type: latchkey.AuditLogoutAll})
	if err := a.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := a.Purge(t.Context(), 12*time.Hour); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want the 3 old events", n, err)
	}
	if got, _ := a.List(t.Context(), latchkey.AuditQuery{Limit: 10}); len(got) != 1 || got[0].Type != latchkey.AuditLogoutAll {
		t.Errorf("left %d events; want only the recent one", len(got))
	}
}
