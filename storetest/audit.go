package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// auditEvent returns event number i: ids sort in i's order, as UUIDv7s do
// in time order, and every field is set.
func auditEvent(i int, typ latchkey.AuditType, user string) *latchkey.AuditEvent {
	return &latchkey.AuditEvent{
		ID: fmt.Sprintf("0190d6a0-0000-7000-8000-%012d", i), At: t0.Add(time.Duration(i) * time.Minute),
		Type: typ, UserID: user, SessionID: fmt.Sprintf("s%d", i), IP: "192.0.2.1",
		UserAgent: "agent é ✓", Detail: fmt.Sprintf("detail %d", i),
	}
}

// seq is an event's number in auditEvent, for short messages.
func seq(e *latchkey.AuditEvent) string { return e.ID[len(e.ID)-2:] }

func testAuditAppendAndList(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	var all []*latchkey.AuditEvent
	for i := 1; i <= 6; i++ {
		typ, user := latchkey.AuditLoginFailed, "u1"
		if i%2 == 0 {
			typ, user = latchkey.AuditLoginSucceeded, "u2"
		}
		all = append(all, auditEvent(i, typ, user))
	}
	if err := s.AppendAudit(ctx, all[:4]); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := s.AppendAudit(ctx, all[4:]); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}

	got, err := s.ListAudit(ctx, latchkey.AuditQuery{Limit: 10})
	if err != nil || len(got) != 6 {
		t.Fatalf("ListAudit = %d events, %v; want 6", len(got), err)
	}
	want := all[5]
	e := got[0]
	if e.ID != want.ID || e.Type != want.Type || e.UserID != want.UserID || e.SessionID != want.SessionID ||
		e.IP != want.IP || e.UserAgent != want.UserAgent || e.Detail != want.Detail {
		t.Errorf("newest event = %+v, want %+v", e, want)
	}
	checkTime(t, "AuditEvent.At", e.At, want.At)

	for _, tc := range []struct {
		name string
		q    latchkey.AuditQuery
		want []string
	}{
		{"newest first", latchkey.AuditQuery{Limit: 10}, []string{"06", "05", "04", "03", "02", "01"}},
		{"limit", latchkey.AuditQuery{Limit: 2}, []string{"06", "05"}},
		{"before a cursor", latchkey.AuditQuery{Before: all[3].ID, Limit: 10}, []string{"03", "02", "01"}},
		{"by user", latchkey.AuditQuery{UserID: "u1", Limit: 10}, []string{"05", "03", "01"}},
		{"by type", latchkey.AuditQuery{Type: latchkey.AuditLoginSucceeded, Limit: 10}, []string{"06", "04", "02"}},
		{"by user, type and cursor", latchkey.AuditQuery{UserID: "u2", Type: latchkey.AuditLoginSucceeded, Before: all[5].ID, Limit: 1}, []string{"04"}},
		{"no match", latchkey.AuditQuery{UserID: "nobody", Limit: 10}, []string{}},
		{"no limit, none", latchkey.AuditQuery{}, []string{}},
	} {
		got, err := s.ListAudit(ctx, tc.q)
		if err != nil || !slices.Equal(ids(got, seq), tc.want) {
			t.Errorf("%s: ListAudit = %v, %v; want %v", tc.name, ids(got, seq), err, tc.want)
		}
	}
}

func testAuditAppendAllOrNone(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	first := auditEvent(1, latchkey.AuditLogout, "u1")
	if err := s.AppendAudit(ctx, []*latchkey.AuditEvent{first}); err != nil {
		t.Fatal(err)
	}
	batch := []*latchkey.AuditEvent{auditEvent(2, latchkey.AuditLogout, "u1"), first}
	if err := s.AppendAudit(ctx, batch); !errors.Is(err, latchkey.ErrConflict) {
		t.Fatalf("AppendAudit with a duplicate id: %v, want ErrConflict", err)
	}
	if got, _ := s.ListAudit(ctx, latchkey.AuditQuery{Limit: 10}); len(got) != 1 {
		t.Errorf("a refused batch stored %d events, want none of it", len(got)-1)
	}
}

func testAuditDeleteBefore(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	var all []*latchkey.AuditEvent
	for i := 1; i <= 10; i++ {
		all = append(all, auditEvent(i, latchkey.AuditLogout, "u1"))
	}
	if err := s.AppendAudit(ctx, all); err != nil {
		t.Fatal(err)
	}
	cutoff := all[6].At // events 1..6 are strictly before it
	if n, err := s.DeleteAuditBefore(ctx, cutoff, 4); err != nil || n != 4 {
		t.Fatalf("DeleteAuditBefore(limit 4) = %d, %v; want 4", n, err)
	}
	got, _ := s.ListAudit(ctx, latchkey.AuditQuery{Limit: 20})
	if want := []string{"10", "09", "08", "07", "06", "05"}; !slices.Equal(ids(got, seq), want) {
		t.Errorf("after one batch = %v, want the oldest four gone: %v", ids(got, seq), want)
	}
	if n, err := s.DeleteAuditBefore(ctx, cutoff, 4); err != nil || n != 2 {
		t.Fatalf("DeleteAuditBefore again = %d, %v; want the 2 left before the cutoff", n, err)
	}
	if n, err := s.DeleteAuditBefore(ctx, cutoff, 4); err != nil || n != 0 {
		t.Errorf("DeleteAuditBefore with nothing old = %d, %v; want 0", n, err)
	}
}

// testAuditDeleteConcurrent is several replicas purging at once: together
// they delete each old event once and no new one.
func testAuditDeleteConcurrent(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	var all []*latchkey.AuditEvent
	for i := 1; i <= 60; i++ {
		all = append(all, auditEvent(i, latchkey.AuditLogout, "u1"))
	}
	if err := s.AppendAudit(ctx, all); err != nil {
		t.Fatal(err)
	}
	cutoff := all[50].At // 50 old events
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				n, err := s.DeleteAuditBefore(ctx, cutoff, 7)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	got, _ := s.ListAudit(ctx, latchkey.AuditQuery{Limit: 100})
	if total != 50 || len(got) != 10 {
		t.Errorf("concurrent purges deleted %d and left %d; want 50 deleted and the 10 recent ones left", total, len(got))
	}
}
