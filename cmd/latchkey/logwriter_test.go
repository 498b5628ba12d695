package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/server"
)

// TestLogWriterKeepsOrderAndFlushesOnClose: every line arrives whole, in
// order, and Close returns only once all of them are written.
func TestLogWriterKeepsOrderAndFlushesOnClose(t *testing.T) {
	var out syncBuffer
	w := newLogWriter(&out)
	logger := slog.New(slog.NewTextHandler(w, nil))
	const n = 1000 // fewer than the queue holds: none may be dropped
	for i := range n {
		logger.Info("request", "i", i)
	}
	w.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines after Close, want %d", len(lines), n)
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, fmt.Sprintf(" i=%d", i)) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	// After Close, lines go straight to the output.
	logger.Info("after close")
	if !strings.Contains(out.String(), "after close") {
		t.Error("a line written after Close was lost")
	}
	w.Close() // a second Close is harmless
}

// blockedWriter blocks every Write until release is closed.
type blockedWriter struct {
	release chan struct{}
	out     syncBuffer
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	<-b.release
	return b.out.Write(p)
}

// TestLogWriterNeverBlocks: with the output stuck, writes still return at
// once; what does not fit is dropped and counted, and once the output
// moves again every line is either written or in the count of a warning.
func TestLogWriterNeverBlocks(t *testing.T) {
	out := &blockedWriter{release: make(chan struct{})}
	w := newLogWriter(out)
	// Lines of 200 bytes: the writer goroutine's buffer takes about 330
	// before it is stuck in the output's Write, the queue logQueueLines,
	// and the rest must be dropped.
	const total = logQueueLines + 1000
	pad := strings.Repeat("x", 190)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			fmt.Fprintf(w, "line %04d %s\n", i, pad)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on a stuck output")
	}
	if w.Dropped() == 0 {
		t.Fatal("nothing dropped with the output stuck and the queue overrun")
	}
	close(out.release)
	w.Close()
	got := out.out.String()
	written := strings.Count(got, pad+"\n")
	reported := 0
	for _, m := range regexp.MustCompile(`level=WARN msg="log lines dropped: the log output is slower than the server" count=(\d+)`).FindAllStringSubmatch(got, -1) {
		n, _ := strconv.Atoi(m[1])
		reported += n
	}
	if written+reported != total || reported == 0 {
		t.Errorf("%d lines written and %d reported dropped, want %d in all, some dropped", written, reported, total)
	}
	if !strings.Contains(got, "line 0000 ") {
		t.Error("the first line, queued before the output stuck, was not written")
	}
	if w.Dropped() != 0 {
		t.Errorf("%d drops still unreported after Close", w.Dropped())
	}
}

// TestLogWriterConcurrent: many goroutines logging through one writer
// lose nothing while the queue has room, and -race sees no race.
func TestLogWriterConcurrent(t *testing.T) {
	var out syncBuffer
	w := newLogWriter(&out)
	logger := slog.New(slog.NewTextHandler(w, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				logger.Info("request", "g", g, "i", i)
			}
		})
	}
	wg.Wait()
	w.Close()
	if n := strings.Count(out.String(), "\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}

// countingWriter counts the writes that reach the output.
type countingWriter struct {
	syncBuffer
	writes atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.syncBuffer.Write(p)
}

// TestLogWriterBatchesBusyOutput: while lines keep coming, they reach
// the output in batches, about one write per logFlushInterval, not one
// write per line; and a line that comes to an idle writer is written
// at once, without waiting for Close or for more lines.
func TestLogWriterBatchesBusyOutput(t *testing.T) {
	out := &countingWriter{}
	w := newLogWriter(out)
	defer w.Close()
	logger := slog.New(slog.NewTextHandler(w, nil))
	const n = 2000 // fewer than the queue holds: none may be dropped
	start := time.Now()
	for i := range n {
		logger.Info("request", "i", i)
	}
	elapsed := time.Since(start)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines written 5 s after the last", strings.Count(out.String(), "\n"), n)
		}
		time.Sleep(time.Millisecond)
	}
	// One write for the first line, then at most one per interval while
	// the lines came, and one for what came during the last interval.
	limit := 3 + 2*int64(elapsed/logFlushInterval)
	if got := out.writes.Load(); got > limit {
		t.Errorf("%d lines in %v reached the output in %d writes, want at most %d", n, elapsed, got, limit)
	}

	time.Sleep(3 * logFlushInterval) // idle again
	before := out.writes.Load()
	logger.Info("alone")
	for !strings.Contains(out.String(), "msg=alone") {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("a line to an idle writer was not written")
		}
		time.Sleep(100 * time.Microsecond)
	}
	if got := out.writes.Load() - before; got != 1 {
		t.Errorf("the lone line took %d writes, want 1", got)
	}
}

// slowWriter is a disk that takes delay per write, as a loaded or
// network-backed disk does.
type slowWriter struct {
	delay time.Duration
	out   io.Writer
}

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.out.Write(p)
}

// BenchmarkAccessLog is one request through server.AccessLog, its line
// written unbuffered to a file (os.Stderr redirected to a file is that),
// through a logWriter to the same file, and, as the ceiling, to
// io.Discard; then the same two over a disk that takes 200 µs per write.
// Requests run in parallel, as a server's do.
//
//	go test -run '^$' -bench AccessLog -benchmem -count 5 ./cmd/latchkey
func BenchmarkAccessLog(b *testing.B) {
	body := []byte(`[{"id":1,"title":"Things Fall Apart"}]`)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	file := func(b *testing.B) *os.File {
		f, err := os.Create(filepath.Join(b.TempDir(), "log"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { f.Close() })
		return f
	}
	run := func(b *testing.B, out io.Writer) {
		logger := slog.New(slog.NewTextHandler(out, nil))
		srv := server.AccessLog(logger, nil, h)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest("GET", "/books", nil)
			req.RemoteAddr = "192.0.2.1:1234"
			for pb.Next() {
				srv.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
	async := func(b *testing.B, out io.Writer) {
		w := newLogWriter(out)
		run(b, w)
		b.StopTimer()
		if d := w.Dropped(); d > 0 {
			b.ReportMetric(float64(d)/float64(b.N), "dropped/op")
		}
		w.Close()
	}
	b.Run("discard", func(b *testing.B) { run(b, io.Discard) })
	b.Run("file/direct", func(b *testing.B) { run(b, file(b)) })
	b.Run("file/logWriter", func(b *testing.B) { async(b, file(b)) })
	b.Run("slow-disk/direct", func(b *testing.B) { run(b, slowWriter{200 * time.Microsecond, file(b)}) })
	b.Run("slow-disk/logWriter", func(b *testing.B) { async(b, slowWriter{200 * time.Microsecond, file(b)}) })
}

// TestServeDoesNotWaitForItsLog: with stderr stuck (a paused terminal, a
// full pipe), `latchkey serve` still answers; its log lines arrive once
// stderr moves, and all of them before serve returns.
func TestServeDoesNotWaitForItsLog(t *testing.T) {
	stderr := &blockedWriter{release: make(chan struct{})}
	vars := map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "auth.db"),
	}
	addrs := make(chan map[string]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEnv(ctx, []string{"latchkey", "serve"}, env{
			getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""),
			stdout: io.Discard, stderr: stderr, ready: func(a map[string]string) { addrs <- a },
		})
	}()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a["auth"]
	case err := <-done:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start with its stderr stuck")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 20 {
		res, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("request %d with stderr stuck: %v", i, err)
		}
		res.Body.Close()
	}
	close(stderr.release)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if n := strings.Count(stderr.out.String(), `msg=request server=auth method=GET path=/healthz status=200`); n != 20 {
		t.Errorf("%d access-log lines written by the time serve returned, want 20\n%s", n, stderr.out.String())
	}
}
