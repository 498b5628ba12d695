package main

import (
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/internal/pgdb/pgdbtest"
)

// pgSchema returns a LATCHKEY_DATABASE_URL for a schema of this test's
// own on the test PostgreSQL server, dropped when the test ends.
func pgSchema(t *testing.T) string {
	t.Helper()
	base := pgdbtest.URL(t)
	schema := pgdbtest.Schema(t)
	if _, err := pgdbtest.Admin(t, base).Exec(t.Context(), `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	// pgx sends search_path as a run-time parameter of every connection.
	return pgdbtest.WithParams(t, base, "search_path", schema)
}

// startServe runs `latchkey serve` with vars and returns its URL.
func startServe(t *testing.T, vars map[string]string) string {
	t.Helper()
	addrs := make(chan map[string]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr syncBuffer
	go func() {
		done <- runEnv(ctx, []string{"latchkey", "serve"}, env{
			getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""),
			stdout: io.Discard, stderr: &stderr, ready: func(a map[string]string) { addrs <- a },
		})
	}()
	select {
	case a := <-addrs:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		return "http://" + a["auth"]
	case err := <-done:
		cancel()
		t.Fatalf("serve exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return ""
}

// TestServeOnPostgres: three `latchkey serve` on one PostgreSQL database,
// with Redis, serve one user base with one key set.
func TestServeOnPostgres(t *testing.T) {
	db := pgSchema(t)
	vars := map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": db, "LATCHKEY_ISSUER": "http://auth.test",
		"LATCHKEY_LOG_LEVEL": "warn", "LATCHKEY_PASSWORD_HASH": "m=19456,t=2,p=1",
		"LATCHKEY_KEY_ENCRYPTION_KEY": strings.Repeat("07", 32),
	}
	if r := os.Getenv("LATCHKEY_TEST_REDIS_URL"); r != "" {
		vars["LATCHKEY_REDIS_URL"] = r
	}
	urls := make([]string, 3)
	for i := range urls {
		urls[i] = startServe(t, vars)
	}
	if st, b := call(t, "POST", urls[0]+"/register", "", map[string]string{"username": "pguser", "password": "password123pg"}); st != 201 {
		t.Fatalf("register on replica 0: %d %s", st, b)
	}
	var jwks []string
	for i, u := range urls {
		access, _ := loginAs(t, u, "pguser", "password123pg")
		for _, v := range urls {
			if st, _ := call(t, "GET", v+"/me", access, nil); st != 200 {
				t.Errorf("token of replica %d at %s: %d", i, v, st)
			}
		}
		_, b := call(t, "GET", u+"/.well-known/jwks.json", "", nil)
		jwks = append(jwks, string(b))
	}
	if jwks[0] != jwks[1] || jwks[1] != jwks[2] || strings.Count(jwks[0], `"kid"`) != 2 {
		t.Errorf("replicas publish different key sets, or not the next and the active key:\n%s", strings.Join(jwks, "\n"))
	}

	// Another start with a wrong key-encryption key stops with one line
	// naming the variable and exit code 2.
	bad := map[string]string{}
	for k, v := range vars {
		bad[k] = v
	}
	bad["LATCHKEY_KEY_ENCRYPTION_KEY"] = strings.Repeat("08", 32)
	var stderr strings.Builder
	err := run(t.Context(), []string{"latchkey", "serve"}, func(k string) string { return bad[k] }, func() []string { return nil }, strings.NewReader(""), io.Discard, &stderr)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "LATCHKEY_KEY_ENCRYPTION_KEY") {
		t.Errorf("start with a wrong key-encryption key: %v; want exit 2 naming LATCHKEY_KEY_ENCRYPTION_KEY", err)
	}
}

// TestServeRefusesBadSettings: each new setting's bad value stops the
// start with a line naming it.
func TestServeRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct{ key, value string }{
		{"LATCHKEY_DATABASE_URL", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"},
		{"LATCHKEY_PASSWORD_HASH", "m=1024,t=1,p=1"},
		{"LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/33"},
		{"LATCHKEY_KEY_ENCRYPTION_KEY", "short"},
		{"LATCHKEY_REDIS_URL", "http://example"},
		{"LATCHKEY_AUDIT_RETENTION", "soon"},
		{"ACCESS_TOKEN_SECRET_PREVIOUS", "short"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			vars := map[string]string{"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": "sqlite:" + t.TempDir() + "/a.db", tc.key: tc.value}
			err := run(t.Context(), []string{"latchkey", "serve"}, func(k string) string { return vars[k] }, func() []string { return nil }, strings.NewReader(""), io.Discard, io.Discard)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("%s=%s: %v; want exit 2 naming it", tc.key, tc.value, err)
			}
		})
	}
}

// TestServeRedisAtStart: Redis that does not answer is an outage, and the
// server starts on the in-process throttle with one warning and no dial
// errors from go-redis at info level; Redis that answers with an error is
// a configuration mistake, and the start stops with exit 2.
func TestServeRedisAtStart(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		var stderr syncBuffer
		vars := map[string]string{
			"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": "sqlite:" + t.TempDir() + "/a.db",
			"LATCHKEY_REDIS_URL": "redis://" + freePort(t) + "/0", "LATCHKEY_PASSWORD_HASH": "m=7168,t=5,p=1",
		}
		addrs := make(chan map[string]string, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- runEnv(ctx, []string{"latchkey", "serve"}, env{getenv: func(k string) string { return vars[k] },
				stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr, ready: func(a map[string]string) { addrs <- a }})
		}()
		var base string
		select {
		case a := <-addrs:
			base = "http://" + a["auth"]
		case err := <-done:
			t.Fatalf("serve with Redis down did not start: %v\n%s", err, stderr.String())
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not start")
		}
		call(t, "POST", base+"/register", "", map[string]string{"username": "redisless", "password": "password123x"})
		for range 3 {
			start := time.Now()
			if st, _ := call(t, "POST", base+"/login", "", map[string]string{"username": "redisless", "password": "wrong password"}); st != 401 {
				t.Errorf("login with Redis down: %d, want 401", st)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("a login with Redis down took %s", d)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		log := stderr.String()
		warnings := 0
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "Redis") {
				warnings++
			}
		}
		if warnings != 1 || !strings.Contains(log, "Redis unavailable") {
			t.Errorf("%d warnings about Redis, want the limiter's one:\n%s", warnings, log)
		}
		if strings.Contains(log, "component=go-redis") {
			t.Errorf("go-redis logs at info level:\n%s", log)
		}
	})
	t.Run("answers with an error", func(t *testing.T) {
		base := os.Getenv("LATCHKEY_TEST_REDIS_URL")
		if base == "" {
			t.Skipf("LATCHKEY_TEST_REDIS_URL not set")
		}
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/9999" // no Redis has this database
		vars := map[string]string{"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": "sqlite:" + t.TempDir() + "/a.db", "LATCHKEY_REDIS_URL": u.String()}
		err = run(t.Context(), []string{"latchkey", "serve"}, func(k string) string { return vars[k] }, func() []string { return nil }, strings.NewReader(""), io.Discard, io.Discard)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "LATCHKEY_REDIS_URL") {
			t.Errorf("Redis refusing the database index: %v; want exit 2 naming LATCHKEY_REDIS_URL", err)
		}
	})
}
