package latchkey_test

import (
	"context"
	"errors"
	"fmt"
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

// countIn sums the events a record of a repeated event stands for: itself
// and the "and N more since" it says.
func countIn(t *testing.T, events []*latchkey.AuditEvent) int {
	t.Helper()
	n := 0
	for _, ev := range events {
		n++
		if i := strings.Index(ev.Detail, "; and "); i >= 0 {
			var more int
			if _, err := fmt.Sscanf(ev.Detail[i:], "; and %d more since", &more); err != nil {
				t.Fatalf("detail %q: %v", ev.Detail, err)
			}
			n += more
		}
	}
	return n
}

// TestAuditLogRecordRepeated: of the events under one key, one a minute
// is stored, and the records together account for every event, the ones
// after the key went quiet included; observers see each event.
func TestAuditLogRecordRepeated(t *testing.T) {
	e := newTestService(t, nil)
	a := latchkey.NewAuditLog(e.Store, nil, e.Clock.Now)
	var observed int
	a.Observe(func(latchkey.AuditEvent) { observed++ })
	ctx := t.Context()
	refuse := func(n int, ip string) {
		for range n {
			a.RecordRepeated(ctx, latchkey.AuditEvent{Type: latchkey.AuditLoginThrottled, IP: ip, Detail: "username \"anna\""}, ip+"/anna")
			e.Clock.Advance(10 * time.Millisecond)
		}
	}
	list := func() []*latchkey.AuditEvent {
		t.Helper()
		got, err := a.List(ctx, latchkey.AuditQuery{Type: latchkey.AuditLoginThrottled, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	refuse(1000, "192.0.2.1") // 10 s of refusals
	if got := list(); len(got) != 1 || got[0].Detail != "username \"anna\"" {
		t.Fatalf("after 1000 refusals in 10 s: %d records; want the first alone", len(got))
	}
	e.Clock.Advance(time.Minute)
	refuse(1, "192.0.2.1")
	got := list()
	if len(got) != 2 || !strings.Contains(got[0].Detail, "; and 999 more since "+latchkeytest.Start.UTC().Format(time.RFC3339)) {
		t.Fatalf("the first refusal after the window: %d records, newest %q; want it to carry the 999 held", len(got), got[0].Detail)
	}

	refuse(5, "192.0.2.1") // held: the window began with the last record
	refuse(3, "198.51.100.2")
	if got := list(); len(got) != 3 {
		t.Fatalf("%d records; want one more, for the other address's first refusal", len(got))
	}
	lastHeld := e.Clock.Now().Add(-10 * time.Millisecond) // the other address's last refusal
	e.Clock.Advance(time.Minute)
	got = list() // List flushes, and a Flush records what quiet keys hold
	if len(got) != 5 {
		t.Fatalf("after both keys went quiet: %d records; want 5", len(got))
	}
	if !got[0].At.Equal(lastHeld.UTC().Truncate(time.Microsecond)) || !strings.Contains(got[0].Detail, "; and 1 more since") {
		t.Errorf("the other address's held refusals: recorded at %v as %q; want the last one's own time, and 1 more", got[0].At, got[0].Detail)
	}
	if n := countIn(t, got); n != 1009 || observed != 1009 {
		t.Errorf("the records stand for %d refusals and observers saw %d; want 1009 both", n, observed)
	}
	if got := list(); len(got) != 5 {
		t.Errorf("a second Flush recorded again: %d records", len(got))
	}
}

// TestAuditLogRecordRepeatedBound: the keys tracked at once are bounded;
// an event under a new key past the bound is recorded as it comes.
func TestAuditLogRecordRepeatedBound(t *testing.T) {
	e := newTestService(t, nil)
	a := latchkey.NewAuditLog(e.Store, nil, e.Clock.Now)
	ctx := t.Context()
	for i := range latchkey.MaxRepeatKeys {
		a.RecordRepeated(ctx, latchkey.AuditEvent{Type: latchkey.AuditLoginThrottled}, fmt.Sprint("key", i))
	}
	for range 2 {
		a.RecordRepeated(ctx, latchkey.AuditEvent{Type: latchkey.AuditLoginThrottled, Detail: "past the bound"}, "one more key")
	}
	got, err := a.List(ctx, latchkey.AuditQuery{Type: latchkey.AuditLoginThrottled, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Detail != "past the bound" || got[1].Detail != "past the bound" {
		t.Errorf("%d newest records, the first %q; want both events past the bound recorded", len(got), got[0].Detail)
	}
}

// TestThrottledFloodIsRecordedOnceAMinute is the attack: wrong passwords
// from one address as fast as it can send them. Each refusal used to be a
// row of its own (117,808 in 5 s from one machine); now the client's
// refusals are one record a minute that counts them all.
func TestThrottledFloodIsRecordedOnceAMinute(t *testing.T) {
	e := newTestService(t, func(c *latchkey.Config) {
		c.LoginRatePerIP = latchkey.Rate{Burst: 3, Every: time.Hour}
	})
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	ctx := t.Context()
	attacker := latchkey.Client{IP: "203.0.113.9"}
	refused := 0
	for range 500 {
		_, err := e.Service.Login(ctx, "anna", "not-her-password", attacker)
		var rl *latchkey.RateLimitedError
		switch {
		case errors.As(err, &rl):
			refused++
		case !errors.Is(err, latchkey.ErrInvalidCredentials):
			t.Fatalf("Login: %v", err)
		}
		e.Clock.Advance(time.Millisecond)
	}
	if refused != 497 {
		t.Fatalf("%d refusals, want 497 after a burst of 3", refused)
	}
	list := func() []*latchkey.AuditEvent {
		got, err := e.Service.Audit().List(ctx, latchkey.AuditQuery{Type: latchkey.AuditLoginThrottled, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := list(); len(got) != 1 || got[0].IP != attacker.IP {
		t.Fatalf("%d login_throttled records during the flood, want 1 for the address", len(got))
	}
	e.Clock.Advance(time.Minute)
	got := list()
	if len(got) != 2 || countIn(t, got) != refused {
		t.Errorf("after the flood: %d records standing for %d refusals; want 2 standing for %d", len(got), countIn(t, got), refused)
	}

	// A spray of usernames from one address: its own allowance refuses
	// them, whatever the name, and one record a minute counts them all.
	sprayer := latchkey.Client{IP: "203.0.113.10"}
	refused = 0
	for i := range 300 {
		_, err := e.Service.Login(ctx, fmt.Sprintf("user%d", i), "not-a-password", sprayer)
		var rl *latchkey.RateLimitedError
		if errors.As(err, &rl) {
			refused++
		}
		e.Clock.Advance(time.Millisecond)
	}
	var spray []*latchkey.AuditEvent
	for _, ev := range list() {
		if ev.IP == sprayer.IP {
			spray = append(spray, ev)
		}
	}
	if refused != 297 || len(spray) != 1 || !strings.Contains(spray[0].Detail, "too many from this address") {
		t.Fatalf("a spray of 300 names: %d refused, %d records; want 297 refused and 1 record of the address's allowance", refused, len(spray))
	}
	e.Clock.Advance(time.Minute)
	spray = spray[:0]
	for _, ev := range list() {
		if ev.IP == sprayer.IP {
			spray = append(spray, ev)
		}
	}
	if n := countIn(t, spray); n != refused {
		t.Errorf("the spray's records stand for %d refusals, want %d", n, refused)
	}
}

// TestAuditLogShutdownRecordsWhatIsHeld: the refusals a key holds in its
// window are recorded when Run stops, not lost with the process.
func TestAuditLogShutdownRecordsWhatIsHeld(t *testing.T) {
	e := newTestService(t, nil)
	a := latchkey.NewAuditLog(e.Store, nil, e.Clock.Now)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { a.Run(ctx, time.Hour); close(done) }()
	long := strings.Repeat("A", 60<<10) // a user agent near the header limit
	for range 100 {
		a.RecordRepeated(t.Context(), latchkey.AuditEvent{Type: latchkey.AuditLoginThrottled, IP: "192.0.2.1", UserAgent: long}, "key")
	}
	cancel()
	<-done
	got, err := e.Store.ListAudit(t.Context(), latchkey.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if n := countIn(t, got); len(got) != 2 || n != 100 {
		t.Errorf("after shutdown: %d records standing for %d refusals; want 2 standing for 100", len(got), n)
	}
	for _, ev := range got {
		if len(ev.UserAgent) > 512 {
			t.Errorf("a record keeps a %d-byte user agent; want it cut to 512", len(ev.UserAgent))
		}
	}
}
