package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSweepSchedule: the auth server runs the domain's sweep on every
// tick, logs what it deleted and what failed, and stops with its context.
func TestSweepSchedule(t *testing.T) {
	results := []struct {
		n   int
		err error
	}{{3, nil}, {0, nil}, {0, errors.New("database is locked")}, {2, nil}}
	var mu sync.Mutex
	calls := 0
	ctx, cancel := context.WithCancel(context.Background())
	sweep := func(context.Context) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == len(results) {
			cancel() // the last planned sweep ends the schedule
		}
		if calls > len(results) {
			return 0, nil
		}
		r := results[calls-1]
		return r.n, r.err
	}
	var log syncBuffer
	done := make(chan struct{})
	go func() {
		sweepSessions(ctx, time.Millisecond, sweep, slog.New(slog.NewTextHandler(&log, nil)))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the schedule did not stop when its context was cancelled")
	}
	mu.Lock()
	n := calls
	mu.Unlock()
	if n != len(results) {
		t.Errorf("%d sweeps, want %d (one per tick until cancelled)", n, len(results))
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	want := []string{
		`level=INFO msg=swept count=3`,
		`level=WARN msg="sweep failed" err="database is locked"`,
		`level=INFO msg=swept count=2`,
	}
	if len(lines) != len(want) {
		t.Fatalf("log:\n%s\nwant %d lines (nothing for an empty sweep)", log.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("log line %d = %q, want it to end %q", i, lines[i], w)
		}
	}
}
