package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestShutdownFinishesInFlightRequests cancels the server's context while a
// request is being handled: the request must still get its answer, and new
// connections must be refused.
func TestShutdownFinishesInFlightRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveUntilDone(ctx, slog.New(slog.DiscardHandler), ln, h) }()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		got <- result{body: string(b)}
	}()
	<-entered
	cancel()
	// Shutdown closes the listener before waiting for the request.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("serveUntilDone: %v", err)
	}
}

// TestSIGTERM runs the real binary and stops it the way a supervisor does.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--database-url", "sqlite:"+filepath.Join(dir, "auth.db"))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "LATCHKEY_LOG_LEVEL=info")
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait for the "listening" line, then signal.
			buf := make([]byte, 4096)
			var log strings.Builder
			for !strings.Contains(log.String(), "listening") {
				n, err := stderr.Read(buf)
				log.Write(buf[:n])
				if err != nil {
					t.Fatalf("server exited before listening:\n%s", log.String())
				}
			}
			cmd.Process.Signal(sig)
			rest, _ := io.ReadAll(stderr)
			log.Write(rest)
			if err := cmd.Wait(); err != nil {
				t.Errorf("exit after %s: %v\n%s", sig, err, log.String())
			}
			if !strings.Contains(log.String(), "shutting down") {
				t.Errorf("no graceful shutdown in the log:\n%s", log.String())
			}
		})
	}
}

// testBuildVersion is stamped into the test binary as a release build
// stamps its version.
const testBuildVersion = "v0.0.0-test"

// buildBinary builds cmd/latchkey once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "latchkey-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "latchkey")
		if out, err := exec.Command("go", "build", "-ldflags=-X main.buildVersion="+testBuildVersion, "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)
