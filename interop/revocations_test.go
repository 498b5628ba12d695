package interop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/token"
)

// nodePoll is the Node follower's poll in these tests; the contract's
// bound is the poll plus one second.
const nodePoll = time.Second

// startNodeResourceServer runs interop/node/revocations-server.mjs, an
// Express-shaped jose verifier that follows the revocation feed, against
// the auth server, and returns its URL once it has a list. It is stopped
// when the test ends.
func startNodeResourceServer(t *testing.T, node, authURL string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join("node", "revocations-server.mjs"),
		authURL, audience, strconv.FormatInt(nodePoll.Milliseconds(), 10))
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("node resource server stderr:\n%s", stderr.String())
		}
	})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				port <- p
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var url string
	select {
	case p := <-port:
		url = "http://127.0.0.1:" + p
	case <-time.After(nodeTimeout):
		t.Fatalf("the node resource server did not start:\n%s", stderr.String())
	}
	deadline := time.Now().Add(nodeTimeout)
	for {
		if st, _ := nodeGet(t, url+"/readyz", ""); st == 200 {
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node resource server never had a revocation list:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nodeGet(t *testing.T, url, bearer string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: httpTimeout}).Do(req)
	if err != nil {
		return -1, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// loginPair logs in and returns both tokens.
func (a *authServer) loginPair(t *testing.T, username, password string) (access, refresh string) {
	t.Helper()
	st, _, body := a.do(t, http.MethodPost, "/login", "", map[string]string{"username": username, "password": password})
	var out struct{ AccessToken, RefreshToken string }
	if err := json.Unmarshal(body, &out); st != 200 || err != nil {
		t.Fatalf("login %s: %d %s", username, st, body)
	}
	return out.AccessToken, out.RefreshToken
}

// untilNodeRefuses polls url with access until the Node service answers
// 401 invalid_token, within the contract's bound.
func untilNodeRefuses(t *testing.T, url, access string, since time.Time) time.Duration {
	t.Helper()
	for {
		st, body := nodeGet(t, url, access)
		took := time.Since(since)
		switch {
		case st == 401:
			if took > nodePoll+time.Second {
				t.Errorf("refused after %v, over the contract's %v", took.Round(time.Millisecond), nodePoll+time.Second)
			}
			return took
		case st != 200:
			t.Fatalf("GET %s before the refusal: %d %s", url, st, body)
		case took > 5*(nodePoll+time.Second):
			t.Fatalf("still accepted %v after the revocation", took.Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNodeFollowsRevocations: the README's Node snippet (jose's jwtVerify,
// then the revocation list) refuses a logged-out session's token and a
// demoted admin's token within the poll plus one second, and accepts the
// demoted user's refreshed token at once, with its new role.
func TestNodeFollowsRevocations(t *testing.T) {
	node := requireNode(t)
	a := startAuthServer(t, token.ES256, nil)
	if _, err := a.svc.CreateUser(t.Context(), "root", "password123root", latchkey.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	url := startNodeResourceServer(t, node, a.url)

	access, refresh := a.loginPair(t, memberName, memberPass)
	if st, body := nodeGet(t, url+"/me", access); st != 200 || !strings.Contains(string(body), `"role":"member"`) {
		t.Fatalf("anna before logout: %d %s", st, body)
	}
	if st, _, body := a.do(t, "POST", "/logout", "", map[string]string{"refreshToken": refresh}); st != 204 {
		t.Fatalf("logout: %d %s", st, body)
	}
	logout := untilNodeRefuses(t, url+"/me", access, time.Now())

	root := a.login(t, "root", "password123root")
	john, johnRefresh := a.loginPair(t, adminName, adminPassword)
	if st, body := nodeGet(t, url+"/admin", john); st != 200 {
		t.Fatalf("john, admin, before the demotion: %d %s", st, body)
	}
	if st, _, body := a.do(t, "PATCH", "/admin/users/"+a.userID(t, john), root, map[string]string{"role": "member"}); st != 200 {
		t.Fatalf("demote john: %d %s", st, body)
	}
	demotion := untilNodeRefuses(t, url+"/admin", john, time.Now())

	st, _, body := a.do(t, "POST", "/token", "", map[string]string{"refreshToken": johnRefresh})
	var next struct{ AccessToken string }
	if err := json.Unmarshal(body, &next); st != 200 || err != nil {
		t.Fatalf("john's refresh after the demotion: %d %s", st, body)
	}
	if st, body := nodeGet(t, url+"/me", next.AccessToken); st != 200 || !strings.Contains(string(body), `"role":"member"`) {
		t.Errorf("john's refreshed token: %d %s; want accepted at once as a member", st, body)
	}
	if st, _ := nodeGet(t, url+"/admin", next.AccessToken); st != 403 {
		t.Errorf("john's refreshed token on the admin route: %d, want 403", st)
	}
	t.Logf("Node service, poll %v: logout refused after %v, demotion after %v", nodePoll,
		logout.Round(time.Millisecond), demotion.Round(time.Millisecond))
}
