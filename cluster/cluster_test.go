// Package cluster_test runs several Latchkey auth servers as replicas of
// one service: each with its own connection pool on one PostgreSQL schema,
// its own key ring and its own HTTP listener, throttling through one
// Redis, as they run behind a load balancer. Every rule of the contract
// that involves more than one request is tried across replicas here.
package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/postgres"
	"github.com/latchkey-dev/latchkey/redis"
	"github.com/latchkey-dev/latchkey/server"
	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/jwks"
	"github.com/latchkey-dev/latchkey/token/revocation"
)

const (
	password = "password123member"
	issuer   = "https://auth.test"
)

// cluster is N replicas on one database.
type cluster struct {
	replicas []*replica
	dbURL    string
	schema   string
}

type replica struct {
	*httptest.Server
	store *postgres.Store
	keys  *latchkey.KeyRing
	svc   *latchkey.Service
}

type clusterOpts struct {
	n int
	// keyRefresh, when set, runs each replica's key ring refresh at this
	// interval, as latchkey serve does every two seconds.
	keyRefresh time.Duration
	grace      time.Duration
	redisURL   string // "" throttles in each replica's memory
	dbURL      string // default LATCHKEY_TEST_POSTGRES_URL
}

func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("LATCHKEY_TEST_REDIS_URL")
	if u == "" {
		t.Skipf("LATCHKEY_TEST_REDIS_URL not set")
	}
	return u
}

// newCluster starts o.n replicas at the same moment on a schema of their
// own, dropped when the test ends.
func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	base := pgdbtest.URL(t)
	c := &cluster{dbURL: o.dbURL, schema: pgdbtest.Name("latchkey_cluster_")}
	if c.dbURL == "" {
		c.dbURL = base
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{c.schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	prefix := pgdbtest.Name("latchkey-cluster-") + ":"
	c.replicas = make([]*replica, o.n)
	errs := make([]error, o.n)
	var wg sync.WaitGroup
	for i := range o.n {
		wg.Go(func() { c.replicas[i], errs[i] = startReplica(t, c, o, prefix) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	return c
}

func startReplica(t *testing.T, c *cluster, o clusterOpts, redisPrefix string) (*replica, error) {
	ctx := t.Context()
	st, err := postgres.Open(ctx, postgres.Config{URL: c.dbURL, Schema: c.schema, MaxConns: 8})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { st.Close() })
	keys, err := latchkey.NewKeyRing(ctx, latchkey.KeyRingConfig{Store: st})
	if err != nil {
		return nil, err
	}
	if o.keyRefresh > 0 {
		rctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { keys.Run(rctx, o.keyRefresh); close(done) }()
		t.Cleanup(func() { stop(); <-done })
	}
	cfg := latchkey.Config{
		Store: st, Signer: keys, Issuer: issuer, Audience: "latchkey",
		ReuseGrace: o.grace, Argon2: latchkeytest.FastArgon2,
	}
	if o.redisURL != "" {
		lim, err := redis.New(redis.Config{URL: o.redisURL, Prefix: redisPrefix})
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { lim.Close() })
		cfg.Limiter = lim
	}
	svc, err := latchkey.NewService(cfg)
	if err != nil {
		return nil, err
	}
	h, err := server.New(server.Config{Service: svc, Keys: keys})
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &replica{Server: srv, store: st, keys: keys, svc: svc}, nil
}

// at returns the replica a round-robin balancer sends request i to.
func (c *cluster) at(i int) *replica { return c.replicas[i%len(c.replicas)] }

type answer struct {
	status int
	body   map[string]any
	raw    []byte
}

func (r *replica) post(t *testing.T, path string, body any, bearer string) answer {
	t.Helper()
	return r.do(t, "POST", path, body, bearer)
}

func (r *replica) do(t *testing.T, method, path string, body any, bearer string) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, r.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := r.Client().Do(req)
	if err != nil {
		return answer{status: -1, raw: []byte(err.Error())}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: raw}
	json.Unmarshal(raw, &a.body)
	return a
}

func (r *replica) login(t *testing.T, name string) (access, refresh string) {
	t.Helper()
	a := r.post(t, "/login", map[string]string{"username": name, "password": password}, "")
	if a.status != 200 {
		t.Fatalf("login %s at %s: %d %s", name, r.URL, a.status, a.raw)
	}
	return a.body["accessToken"].(string), a.body["refreshToken"].(string)
}

func (c *cluster) register(t *testing.T, name string) {
	t.Helper()
	if a := c.at(0).post(t, "/register", map[string]string{"username": name, "password": password}, ""); a.status != 201 {
		t.Fatalf("register %s: %d %s", name, a.status, a.raw)
	}
}

// TestReplicasAgreeOnKeys: three replicas started at the same moment on
// an empty database store one key set and publish identical JWKS, and a
// token from any replica is accepted by every other.
func TestReplicasAgreeOnKeys(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	var first []byte
	for i, r := range c.replicas {
		resp, err := r.Client().Get(r.URL + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if i == 0 {
			first = body
		} else if !bytes.Equal(body, first) {
			t.Errorf("replica %d publishes %s; replica 0 publishes %s", i, body, first)
		}
	}
	keys, err := c.replicas[0].store.SigningKeys(t.Context())
	if err != nil || len(keys) != 2 {
		t.Fatalf("stored keys = %d, %v; want one active and one next", len(keys), err)
	}
	c.register(t, "anna")
	for i := range c.replicas {
		access, refresh := c.at(i).login(t, "anna")
		for j := range c.replicas {
			if a := c.at(j).do(t, "GET", "/me", nil, access); a.status != 200 {
				t.Errorf("token of replica %d at replica %d: %d %s", i, j, a.status, a.raw)
			}
		}
		// And each other's refresh tokens, in a chain across all three.
		for j := 1; j <= 3; j++ {
			a := c.at(i+j).post(t, "/token", map[string]string{"refreshToken": refresh}, "")
			if a.status != 200 {
				t.Fatalf("refresh of replica %d's chain at replica %d: %d %s", i, (i+j)%3, a.status, a.raw)
			}
			refresh = a.body["refreshToken"].(string)
		}
	}
}

// TestRefreshRaceAcrossReplicas: 20 concurrent refreshes of one token,
// spread round-robin over three replicas, with no grace window: exactly
// one succeeds, and the chain has one successor.
func TestRefreshRaceAcrossReplicas(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	c.register(t, "anna")
	_, refresh := c.at(0).login(t, "anna")
	const n = 20
	answers := make([]answer, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			answers[i] = c.at(i).post(t, "/token", map[string]string{"refreshToken": refresh}, "")
		})
	}
	close(start)
	wg.Wait()
	won, lost := 0, 0
	var winner string
	for _, a := range answers {
		switch {
		case a.status == 200:
			won++
			winner = a.body["refreshToken"].(string)
		case a.status == 401 && a.body["error"] == "invalid_grant":
			lost++
		default:
			t.Errorf("unexpected answer %d %s", a.status, a.raw)
		}
	}
	if won != 1 || lost != n-1 {
		t.Fatalf("%d of %d concurrent refreshes succeeded, %d got invalid_grant; want exactly one", won, n, lost)
	}
	// Losing a race with grace 0 is reuse: the whole session is revoked,
	// including the winner's token.
	if a := c.at(1).post(t, "/token", map[string]string{"refreshToken": winner}, ""); a.status != 401 {
		t.Errorf("the winner's token after the race was judged reuse: %d %s; want 401", a.status, a.raw)
	}
}

// TestGraceAcrossReplicas: with a grace window, two refreshes of one
// token on different replicas both succeed with the same successor.
func TestGraceAcrossReplicas(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, grace: 10 * time.Second})
	c.register(t, "anna")
	_, refresh := c.at(0).login(t, "anna")
	a := c.at(1).post(t, "/token", map[string]string{"refreshToken": refresh}, "")
	b := c.at(2).post(t, "/token", map[string]string{"refreshToken": refresh}, "")
	if a.status != 200 || b.status != 200 || a.body["refreshToken"] != b.body["refreshToken"] {
		t.Fatalf("retry within grace on another replica: %d %s / %d %s; want the same successor twice", a.status, a.raw, b.status, b.raw)
	}
}

// TestReuseOnAnotherReplicaRevokes: a token rotated on replica A and
// presented again on replica C (no grace) revokes the session, whose
// newest token then fails on replica B.
func TestReuseOnAnotherReplicaRevokes(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	c.register(t, "anna")
	access, old := c.at(0).login(t, "anna")
	rotated := c.at(0).post(t, "/token", map[string]string{"refreshToken": old}, "")
	if rotated.status != 200 {
		t.Fatalf("rotate on A: %d %s", rotated.status, rotated.raw)
	}
	if a := c.at(2).post(t, "/token", map[string]string{"refreshToken": old}, ""); a.status != 401 || a.body["error"] != "invalid_grant" {
		t.Fatalf("reuse on C: %d %s; want 401 invalid_grant", a.status, a.raw)
	}
	if a := c.at(1).post(t, "/token", map[string]string{"refreshToken": rotated.body["refreshToken"].(string)}, ""); a.status != 401 {
		t.Errorf("newest token on B after reuse on C: %d %s; want 401, the session is revoked", a.status, a.raw)
	}
	if a := c.at(1).do(t, "GET", "/me", nil, access); a.status != 401 {
		t.Errorf("access token of the revoked session on B's own endpoint: %d; want 401", a.status)
	}
}

// TestSharedThrottle: wrong passwords spread round-robin over three
// replicas are limited at the same count as on one, through Redis.
func TestSharedThrottle(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, redisURL: redisURL(t)})
	c.register(t, "anna")
	first429 := 0
	for i := 1; i <= 3*latchkey.DefaultLoginRatePerUser.Burst && first429 == 0; i++ {
		a := c.at(i).post(t, "/login", map[string]string{"username": "anna", "password": "wrong-password"}, "")
		switch a.status {
		case 401:
		case 429:
			first429 = i
		default:
			t.Fatalf("attempt %d: %d %s", i, a.status, a.raw)
		}
	}
	if want := latchkey.DefaultLoginRatePerUser.Burst + 1; first429 != want {
		t.Errorf("first 429 at attempt %d over three replicas; want %d, as on one", first429, want)
	}
}

// TestRotationReachesReplicas: a rotation made on one replica is signed
// with by every replica after its reload, and no token of any replica
// stops verifying in between.
func TestRotationReachesReplicas(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	c.register(t, "anna")
	before, _ := c.at(1).login(t, "anna")
	if err := c.replicas[0].keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Replica 1 has not reloaded: it still signs with the retired key,
	// which replica 0 still accepts.
	stale, _ := c.at(1).login(t, "anna")
	for _, tok := range []string{before, stale} {
		if a := c.at(0).do(t, "GET", "/me", nil, tok); a.status != 200 {
			t.Errorf("a token of the retired key at the rotating replica: %d %s", a.status, a.raw)
		}
	}
	for _, r := range c.replicas {
		if err := r.keys.Reload(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	active := c.replicas[0].keys.ActiveID()
	for i, r := range c.replicas {
		if r.keys.ActiveID() != active {
			t.Errorf("replica %d signs with %s after reload, want %s", i, r.keys.ActiveID(), active)
		}
	}
	fresh, _ := c.at(2).login(t, "anna")
	for j := range c.replicas {
		for _, tok := range []string{before, fresh} {
			if a := c.at(j).do(t, "GET", "/me", nil, tok); a.status != 200 {
				t.Errorf("replica %d: %d %s", j, a.status, a.raw)
			}
		}
	}
}

// tcpRelay forwards a port to the database, so a test can take the
// database away from one replica and give it back without touching the
// server others use.
type tcpRelay struct {
	target string
	mu     sync.Mutex
	ln     net.Listener
	addr   string
	conns  map[net.Conn]bool
}

func newRelay(t *testing.T, target string) *tcpRelay {
	r := &tcpRelay{target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.stop)
	return r
}

func (r *tcpRelay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", r.target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns[c], r.conns[up] = true, true
			r.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the port and every connection through it: to the replica,
// the database is gone.
func (r *tcpRelay) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
	clear(r.conns)
}

// start opens the same port again.
func (r *tcpRelay) start(t *testing.T) {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatalf("reopen relay: %v", err)
	}
	r.serve(ln)
}

// TestDatabaseLossAndRecovery: when the database goes away, requests get
// a 5xx that reveals nothing and /readyz answers 503; when it comes back,
// the replica recovers by itself, without a restart, and nothing was
// half-written.
func TestDatabaseLossAndRecovery(t *testing.T) {
	base := pgdbtest.URL(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	if !strings.Contains(target, ":") {
		target += ":5432"
	}
	relay := newRelay(t, target)
	u.Host = relay.addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	c := newCluster(t, clusterOpts{n: 1, dbURL: u.String()})
	r := c.replicas[0]
	c.register(t, "anna")
	_, refresh := r.login(t, "anna")

	relay.stop()
	if a := r.do(t, "GET", "/readyz", nil, ""); a.status != 503 {
		t.Errorf("readyz with the database gone: %d %s; want 503", a.status, a.raw)
	}
	for _, req := range []struct{ path, body string }{
		{"/login", `{"username":"anna","password":"` + password + `"}`},
		{"/token", `{"refreshToken":"` + refresh + `"}`},
	} {
		a := r.post(t, req.path, json.RawMessage(req.body), "")
		if a.status < 500 || a.body["error"] != "server_error" {
			t.Errorf("%s with the database gone: %d %s; want a 5xx server_error", req.path, a.status, a.raw)
		}
		for _, leak := range []string{"postgres", "dial", "127.0.0.1", "connect", "pgx"} {
			if bytes.Contains(bytes.ToLower(a.raw), []byte(leak)) {
				t.Errorf("%s answer reveals %q: %s", req.path, leak, a.raw)
			}
		}
	}

	relay.start(t)
	deadline := time.Now().Add(15 * time.Second)
	for r.do(t, "GET", "/readyz", nil, "").status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover within 15 s of the database coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The refresh attempted during the outage did not happen: the token is
	// still the current one.
	if a := r.post(t, "/token", map[string]string{"refreshToken": refresh}, ""); a.status != 200 {
		t.Errorf("refresh after recovery: %d %s; the failed attempt must have changed nothing", a.status, a.raw)
	}
}

// TestReplicasServeOneFeed: revocations made at different replicas appear
// in the revocation feed of every replica, as the same entries under the
// same ETag, so a verifier behind a round-robin balancer gets 304s from
// all three and refuses the revoked tokens whichever replica it asked.
func TestReplicasServeOneFeed(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	ctx := t.Context()
	if _, err := c.at(0).svc.CreateUser(ctx, "root", password, latchkey.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	c.register(t, "anna")
	c.register(t, "john")
	root, _ := c.at(0).login(t, "root")
	anna, annaRefresh := c.at(0).login(t, "anna")
	john, _ := c.at(2).login(t, "john")
	johnID := c.at(0).do(t, "GET", "/me", nil, john).body["id"].(string)

	if a := c.at(1).post(t, "/logout", map[string]string{"refreshToken": annaRefresh}, ""); a.status != 204 {
		t.Fatalf("logout at replica 1: %d %s", a.status, a.raw)
	}
	if a := c.at(2).do(t, "PATCH", "/admin/users/"+johnID, map[string]any{"role": "admin"}, root); a.status != 200 {
		t.Fatalf("role change at replica 2: %d %s", a.status, a.raw)
	}

	type feedDoc struct {
		Issuer   string           `json:"issuer"`
		Sessions []map[string]any `json:"sessions"`
		Users    []map[string]any `json:"users"`
	}
	read := func(r *replica, etag string) (int, string, feedDoc) {
		req, _ := http.NewRequestWithContext(ctx, "GET", r.URL+"/.well-known/revocations", nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := r.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d feedDoc
		json.NewDecoder(resp.Body).Decode(&d)
		return resp.StatusCode, resp.Header.Get("ETag"), d
	}
	// Each replica rebuilds its feed from the database at most once a
	// second, so wait until each shows both revocations.
	etags := make([]string, len(c.replicas))
	docs := make([]feedDoc, len(c.replicas))
	for i, r := range c.replicas {
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, etag, d := read(r, "")
			if st == 200 && len(d.Sessions) == 1 && len(d.Users) == 1 {
				etags[i], docs[i] = etag, d
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d's feed after the revocations: %d %+v", i, st, d)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := range c.replicas {
		if etags[i] != etags[0] || docs[i].Issuer != issuer {
			t.Errorf("replica %d: ETag %s, issuer %s; replica 0: ETag %s", i, etags[i], docs[i].Issuer, etags[0])
		}
		a, _ := json.Marshal(docs[i])
		b, _ := json.Marshal(docs[0])
		if !bytes.Equal(a, b) {
			t.Errorf("replica %d lists %s; replica 0 lists %s", i, a, b)
		}
		if st, _, _ := read(c.replicas[i], etags[0]); st != http.StatusNotModified {
			t.Errorf("replica %d answers replica 0's ETag with %d, want 304", i, st)
		}
	}
	if docs[0].Users[0]["sub"] != johnID {
		t.Errorf("the user entry is %v, want john (%s)", docs[0].Users[0], johnID)
	}

	// A verifier behind a round-robin balancer over the three.
	var next atomic.Int64
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := url.Parse(c.at(int(next.Add(1))).URL)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	defer lb.Close()
	keys, err := jwks.NewRemote(jwks.Config{URL: lb.URL + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := revocation.New(revocation.Config{URL: lb.URL + "/.well-known/revocations", Issuer: issuer, Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { feed.Run(fctx); close(done) }()
	defer func() { cancel(); <-done }()
	for feed.Version() == 0 || next.Load() < 10 {
		time.Sleep(20 * time.Millisecond)
	}
	if v := feed.Version(); v != 1 {
		t.Errorf("the follower took %d lists from three replicas serving one feed, want 1 (then only 304s)", v)
	}
	v := token.NewVerifier(keys, token.WithIssuer(issuer), token.WithAudience("latchkey"), token.WithRevocations(feed))
	for name, raw := range map[string]string{"anna's logged-out token": anna, "john's token from before his role change": john} {
		if _, err := v.Verify(ctx, raw); !errors.Is(err, token.ErrRevoked) {
			t.Errorf("%s: %v, want ErrRevoked", name, err)
		}
	}
	fresh, _ := c.at(1).login(t, "john")
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Errorf("john's token after the change: %v", err)
	}
}

// TestRotationUnderTraffic: two rotations on one replica, while clients
// log in on one replica and use the token at another, fail no request:
// every replica holds the next key before it signs anything.
func TestRotationUnderTraffic(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3, keyRefresh: 100 * time.Millisecond})
	c.register(t, "anna")
	stop := make(chan struct{})
	var mu sync.Mutex
	requests, failures := 0, []string{}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := c.at(i).post(t, "/login", map[string]string{"username": "anna", "password": password}, "")
				got := c.at(i+1).do(t, "GET", "/me", nil, fmt.Sprint(a.body["accessToken"]))
				mu.Lock()
				requests++
				if a.status != 200 || got.status != 200 {
					failures = append(failures, fmt.Sprintf("login %d at %d, /me %d at %d: %s", a.status, i%3, got.status, (i+1)%3, got.raw))
				}
				mu.Unlock()
			}
		})
	}
	active := []string{c.replicas[0].keys.ActiveID()}
	for range 2 {
		time.Sleep(400 * time.Millisecond)
		if err := c.replicas[0].keys.Rotate(t.Context()); err != nil {
			t.Fatal(err)
		}
		active = append(active, c.replicas[0].keys.ActiveID())
	}
	time.Sleep(400 * time.Millisecond)
	close(stop)
	wg.Wait()
	if active[0] == active[1] || active[1] == active[2] {
		t.Fatalf("the rotations did not change the active key: %v", active)
	}
	for i, r := range c.replicas {
		if r.keys.ActiveID() != active[2] {
			t.Errorf("replica %d signs with %s, want %s after its refresh", i, r.keys.ActiveID(), active[2])
		}
	}
	if len(failures) > 0 || requests < 20 {
		t.Errorf("%d of %d requests failed during two rotations (want none of at least 20); the first: %v",
			len(failures), requests, failures[:min(5, len(failures))])
	}
}

// TestSecondFactorAcrossReplicas: a user enrolled on one replica signs in
// in two steps spread over the others; a TOTP code accepted on one replica
// is refused on another; of racing second steps with one mfaToken on
// three replicas, one gets the session; a password changed on one replica
// ends the sessions the others serve.
func TestSecondFactorAcrossReplicas(t *testing.T) {
	c := newCluster(t, clusterOpts{n: 3})
	c.register(t, "anna")
	access, _ := c.at(0).login(t, "anna")
	en := c.at(0).post(t, "/me/totp", map[string]string{"password": password}, access)
	if en.status != 200 {
		t.Fatalf("POST /me/totp on A: %d %s", en.status, en.raw)
	}
	secret := en.body["secret"].(string)
	code := func(d time.Duration) string {
		s, err := latchkey.TOTPCode(secret, time.Now().Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	conf := c.at(1).post(t, "/me/totp/confirm", map[string]string{"code": code(0)}, access)
	if conf.status != 200 {
		t.Fatalf("confirm on B: %d %s", conf.status, conf.raw)
	}
	recovery := conf.body["recoveryCodes"].([]any)
	firstStep := func(r *replica) string {
		a := r.post(t, "/login", map[string]string{"username": "anna", "password": password}, "")
		if a.status != 401 || a.body["error"] != "mfa_required" {
			t.Fatalf("first step at %s: %d %s", r.URL, a.status, a.raw)
		}
		return a.body["mfaToken"].(string)
	}

	// The next step's code (one step of skew) finishes on C what B began.
	next := code(30 * time.Second)
	if a := c.at(2).post(t, "/login/mfa", map[string]string{"mfaToken": firstStep(c.at(1)), "code": next}, ""); a.status != 200 {
		t.Fatalf("second step on C: %d %s", a.status, a.raw)
	}
	if a := c.at(1).post(t, "/login/mfa", map[string]string{"mfaToken": firstStep(c.at(0)), "code": next}, ""); a.status != 401 || a.body["error"] != "invalid_credentials" {
		t.Errorf("the same code on B after C took it: %d %s; want 401 invalid_credentials", a.status, a.raw)
	}

	tok := firstStep(c.at(0))
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			a := c.at(i).post(t, "/login/mfa", map[string]string{"mfaToken": tok, "code": recovery[0].(string)}, "")
			switch a.status {
			case 200:
				won.Add(1)
			case 401:
			default:
				t.Errorf("racing second step: %d %s", a.status, a.raw)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d of 20 racing second steps over three replicas got a session, want exactly 1", won.Load())
	}

	// A password change on A ends the session C serves, not A's own.
	other := c.at(2).post(t, "/login/mfa", map[string]string{"mfaToken": firstStep(c.at(2)), "code": recovery[1].(string)}, "")
	if other.status != 200 {
		t.Fatalf("sign-in on C: %d %s", other.status, other.raw)
	}
	if a := c.at(0).post(t, "/me/password", map[string]string{"currentPassword": password, "newPassword": "a brand new password"}, access); a.status != 204 {
		t.Fatalf("password change on A: %d %s", a.status, a.raw)
	}
	if a := c.at(2).post(t, "/token", map[string]string{"refreshToken": other.body["refreshToken"].(string)}, ""); a.status != 401 {
		t.Errorf("C's session refreshed on C after the change on A: %d; want 401", a.status)
	}
	if a := c.at(1).do(t, "GET", "/me", nil, access); a.status != 200 {
		t.Errorf("the changing session's token on B: %d; want 200", a.status)
	}
}
