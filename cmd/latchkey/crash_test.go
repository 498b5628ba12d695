package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKillDuringRefreshes kills the auth server with SIGKILL while clients
// are rotating their refresh tokens, restarts it on the same database, and
// checks that no session was lost or left half-rotated: every client's last
// token still works. Either its rotation never committed (the token is
// still current), or it committed and the response was lost (the token is
// the previous one, and the grace window returns the same successor).
func TestKillDuringRefreshes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freePort(t)
	base := "http://" + addr
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve")
		cmd.Dir = dir
		cmd.Env = []string{
			"LATCHKEY_ADDR=" + addr,
			"LATCHKEY_DATABASE_URL=sqlite:" + filepath.Join(dir, "auth.db"),
			"LATCHKEY_ADMIN_USERNAME=root", "LATCHKEY_ADMIN_PASSWORD=correct horse battery",
			"LATCHKEY_REFRESH_REUSE_GRACE=1m", "LATCHKEY_LOG_LEVEL=error",
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitReady(t, base+"/readyz")
		return cmd
	}
	server := start()

	const clients = 8
	current := make([]string, clients)
	for i := range current {
		_, current[i] = loginAs(t, base, "root", "correct horse battery")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	refresh := func(tok string) (string, int, error) {
		body, _ := json.Marshal(map[string]string{"refreshToken": tok})
		res, err := client.Post(base+"/token", "application/json", bytes.NewReader(body))
		if err != nil {
			return "", 0, err
		}
		defer res.Body.Close()
		var out struct{ RefreshToken string }
		json.NewDecoder(res.Body).Decode(&out)
		return out.RefreshToken, res.StatusCode, nil
	}

	var wg sync.WaitGroup
	var rotations sync.Map
	for i := range clients {
		wg.Go(func() {
			n := 0
			for {
				next, status, err := refresh(current[i])
				if err != nil {
					break // the server is gone
				}
				if status != 200 {
					t.Errorf("client %d: refresh %d before the kill", i, status)
					return
				}
				current[i] = next
				n++
			}
			rotations.Store(i, n)
		})
	}
	time.Sleep(700 * time.Millisecond)
	server.Process.Signal(syscall.SIGKILL)
	server.Wait()
	wg.Wait()

	total := 0
	rotations.Range(func(_, v any) bool { total += v.(int); return true })
	if total < clients {
		t.Fatalf("only %d rotations before the kill; the test did not exercise anything", total)
	}
	// The port must be free again before the restart.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			break
		}
	}
	start()
	for i, tok := range current {
		next, status, err := refresh(tok)
		if err != nil || status != 200 {
			t.Errorf("client %d after restart: %d %v (its session was lost or half-written)", i, status, err)
			continue
		}
		if _, status, _ := refresh(next); status != 200 {
			t.Errorf("client %d: the chain did not continue after restart: %d", i, status)
		}
	}
	t.Logf("%d rotations by %d clients before SIGKILL", total, clients)
}
