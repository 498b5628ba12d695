package redis

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// testURL is the shared Redis of the tests, or a skip.
func testURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("LATCHKEY_TEST_REDIS_URL")
	if u == "" {
		tb.Skipf("LATCHKEY_TEST_REDIS_URL not set")
	}
	return u
}

// newTestPrefix returns a prefix of its own for one test on a shared
// Redis, and deletes every key under it when the test ends.
func newTestPrefix(tb testing.TB, url string) string {
	tb.Helper()
	prefix := "latchkey-test:" + rand.Text()[:12] + ":"
	tb.Cleanup(func() { deleteKeys(tb, url, prefix) })
	return prefix
}

func deleteKeys(tb testing.TB, url, prefix string) {
	tb.Helper()
	c := newTestClient(tb, url)
	ctx := context.Background()
	keys, err := c.Keys(ctx, prefix+"*").Result() // a test prefix holds a few keys at most
	if err != nil {
		tb.Errorf("list test keys: %v", err)
		return
	}
	if len(keys) > 0 {
		if err := c.Del(ctx, keys...).Err(); err != nil {
			tb.Errorf("delete test keys: %v", err)
		}
	}
}

// newTestClient is a plain client for looking at what a Limiter stored.
func newTestClient(tb testing.TB, url string) *goredis.Client {
	tb.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		tb.Fatalf("parse %s: %v", url, err)
	}
	c := goredis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// newTestLimiter opens a Limiter on cfg and closes it when the test ends.
// Unless allowFallback, the test fails if the Limiter ever served a call
// from its fallback or never ran its script: a test of Redis that passed
// on the in-process limiter would prove nothing.
func newTestLimiter(tb testing.TB, cfg Config, allowFallback bool) (*Limiter, *countHook) {
	tb.Helper()
	l, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	hook := &countHook{}
	l.client.AddHook(hook)
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		if allowFallback {
			return
		}
		if s := l.state.Load(); s != 0 {
			tb.Errorf("the limiter switched to its fallback (state %d): this test did not run on Redis alone", s)
		}
		if hook.scripts.Load() == 0 {
			tb.Errorf("the limiter never ran its script on Redis")
		}
	})
	return l, hook
}

// countHook counts the commands a client sends, and the script runs that
// succeed.
type countHook struct {
	sent    atomic.Int64
	scripts atomic.Int64
}

func (h *countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h *countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.sent.Add(1)
		err := next(ctx, cmd)
		if name := cmd.Name(); err == nil && (name == "evalsha" || name == "eval") {
			h.scripts.Add(1)
		}
		return err
	}
}

func (h *countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.records = append(r.records, rec.Clone())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// count returns how many records of level were logged.
func (r *logRecorder) count(level slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if rec.Level == level {
			n++
		}
	}
	return n
}

// String is every record as one line each, for failure messages and for
// checking what the log reveals.
func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.records {
		fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
		rec.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		})
		b.WriteByte('\n')
	}
	return b.String()
}

// redisServer is a private redis-server, for tests that kill it.
type redisServer struct {
	tb   testing.TB
	port int
	cmd  *exec.Cmd
}

// newRedisServer starts a redis-server of the test's own on a free port.
// It needs no shared Redis, so it runs wherever redis-server is installed;
// where LATCHKEY_TEST_REDIS_URL is set (CI), a missing redis-server fails
// the test instead of skipping it, so that the fault tests cannot silently
// stop running.
func newRedisServer(tb testing.TB) *redisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("LATCHKEY_TEST_REDIS_URL") != "" {
			tb.Fatalf("redis-server not on PATH; the fault tests need it wherever LATCHKEY_TEST_REDIS_URL is set")
		}
		tb.Skipf("redis-server not on PATH")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &redisServer{tb: tb, port: port}
	s.start()
	tb.Cleanup(s.kill)
	return s
}

func (s *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// start runs redis-server on s.port and waits until it answers.
func (s *redisServer) start() {
	s.tb.Helper()
	s.cmd = exec.Command("redis-server", "--port", fmt.Sprint(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no")
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	c := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("redis-server on port %d does not answer: %v", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the server at once, as a crash would.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // in case a test stopped it
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// signal sends sig to the server.
func (s *redisServer) signal(sig syscall.Signal) {
	s.tb.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("signal redis-server: %v", err)
	}
}

// keys lists the keys stored on s under prefix.
func (s *redisServer) keys(prefix string) []string {
	s.tb.Helper()
	c := newTestClient(s.tb, s.url())
	keys, err := c.Keys(context.Background(), prefix+"*").Result()
	if err != nil {
		s.tb.Fatalf("KEYS on the private server: %v", err)
	}
	slices.Sort(keys)
	return keys
}
