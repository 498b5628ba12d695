package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// inTempDir runs the rest of the test in an empty working directory, where
// a .env of the test's own can be written.
func inTempDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.Chdir(wd) })
	return dir
}

func mustLoadConfig(tb testing.TB, cmd command, vars map[string]string) *config {
	tb.Helper()
	cfg, _, err := loadConfig(cmd, nil, env{getenv: func(k string) string { return vars[k] }, stderr: io.Discard}, nil)
	if err != nil {
		tb.Fatalf("%s: %v", cmd.name, err)
	}
	return cfg
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{latchkey.DefaultAccessTTL, "15m"},
		{latchkey.DefaultRefreshIdleTTL, "7d"},
		{latchkey.DefaultSessionMaxAge, "30d"},
		{latchkey.DefaultReuseGrace, "10s"},
		{0, "0s"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{36 * time.Hour, "36h"}, // not a whole number of days
		{1500 * time.Millisecond, "1.5s"},
	} {
		got := formatDuration(tc.d)
		if got != tc.want {
			t.Errorf("formatDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
		// What -h shows as a default must read back as the same value.
		if back, err := parseDuration(got, true); err != nil || back != tc.d {
			t.Errorf("parseDuration(%q) = %s, %v; want %s", got, back, err, tc.d)
		}
	}
}

// TestDefaultsComeFromTheDomain: a change to a latchkey.Default* constant
// is what the binary uses, with nothing else to edit.
func TestDefaultsComeFromTheDomain(t *testing.T) {
	inTempDir(t)
	cfg := mustLoadConfig(t, serveCmd, nil)
	if cfg.AccessTTL != latchkey.DefaultAccessTTL || cfg.RefreshIdleTTL != latchkey.DefaultRefreshIdleTTL ||
		cfg.SessionMaxAge != latchkey.DefaultSessionMaxAge || cfg.ReuseGrace != latchkey.DefaultReuseGrace {
		t.Errorf("access %s idle %s max age %s grace %s, want the latchkey.Default* values",
			cfg.AccessTTL, cfg.RefreshIdleTTL, cfg.SessionMaxAge, cfg.ReuseGrace)
	}
}

// TestListenAddresses: the demo, whose passwords are published, stays on
// loopback unless given an address; serve and books keep the contract's.
func TestListenAddresses(t *testing.T) {
	inTempDir(t)
	for _, tc := range []struct {
		name            string
		cmd             command
		vars            map[string]string
		addr, booksAddr string
	}{
		{"demo by default", demoCmd, nil, "127.0.0.1:3000", "127.0.0.1:4000"},
		{"demo given addresses", demoCmd, map[string]string{"LATCHKEY_ADDR": ":3000", "LATCHKEY_BOOKS_ADDR": ":4000"}, ":3000", ":4000"},
		{"serve", serveCmd, nil, ":3000", ""},
		{"books", booksCmd, nil, ":3000", ":4000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustLoadConfig(t, tc.cmd, tc.vars)
			if cfg.Addr != tc.addr {
				t.Errorf("LATCHKEY_ADDR = %q, want %q", cfg.Addr, tc.addr)
			}
			if slices.Contains(tc.cmd.settings, "LATCHKEY_BOOKS_ADDR") && cfg.BooksAddr != tc.booksAddr {
				t.Errorf("LATCHKEY_BOOKS_ADDR = %q, want %q", cfg.BooksAddr, tc.booksAddr)
			}
			// The demo on loopback is still the contract's issuer.
			if tc.vars == nil && cfg.Issuer != "http://localhost:3000" {
				t.Errorf("issuer %q, want http://localhost:3000", cfg.Issuer)
			}
		})
	}
}

// TestIssuerFollowsAddress: moving the auth server moves the issuer, the
// books server's auth URL and the CORS default with it, unless they are
// set.
func TestIssuerFollowsAddress(t *testing.T) {
	inTempDir(t)
	for _, tc := range []struct {
		name                  string
		cmd                   command
		vars                  map[string]string
		issuer, authURL, cors string
	}{
		{"nothing given", serveCmd, nil, "http://localhost:3000", "http://localhost:3000", "http://localhost:3000"},
		{"every interface", serveCmd, map[string]string{"LATCHKEY_ADDR": ":3100"}, "http://localhost:3100", "http://localhost:3100", "http://localhost:3100"},
		{"0.0.0.0", serveCmd, map[string]string{"LATCHKEY_ADDR": "0.0.0.0:3100"}, "http://localhost:3100", "http://localhost:3100", "http://localhost:3100"},
		{"[::]", serveCmd, map[string]string{"LATCHKEY_ADDR": "[::]:3100"}, "http://localhost:3100", "http://localhost:3100", "http://localhost:3100"},
		{"explicit IPv4 host", serveCmd, map[string]string{"LATCHKEY_ADDR": "127.0.0.1:3100"}, "http://127.0.0.1:3100", "http://127.0.0.1:3100", "http://127.0.0.1:3100"},
		{"explicit IPv6 host", serveCmd, map[string]string{"LATCHKEY_ADDR": "[::1]:3100"}, "http://[::1]:3100", "http://[::1]:3100", "http://[::1]:3100"},
		{"host name", serveCmd, map[string]string{"LATCHKEY_ADDR": "auth.internal:3000"}, "http://auth.internal:3000", "http://auth.internal:3000", "http://auth.internal:3000"},
		{"issuer given", serveCmd, map[string]string{"LATCHKEY_ADDR": ":3100", "LATCHKEY_ISSUER": "https://auth.example/"},
			"https://auth.example", "http://localhost:3100", "https://auth.example"},
		{"auth URL and CORS given", booksCmd, map[string]string{"LATCHKEY_ADDR": ":3100", "LATCHKEY_AUTH_URL": "http://10.0.0.2:3000", "LATCHKEY_CORS_ORIGINS": "http://app.example"},
			"http://localhost:3100", "http://10.0.0.2:3000", "http://app.example"},
		{"books follows a moved auth server", booksCmd, map[string]string{"LATCHKEY_ADDR": ":3100"}, "http://localhost:3100", "http://localhost:3100", "http://localhost:3100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustLoadConfig(t, tc.cmd, tc.vars)
			if cfg.Issuer != tc.issuer || cfg.AuthURL != tc.authURL || !slices.Equal(cfg.CORSOrigins, []string{tc.cors}) {
				t.Errorf("issuer %q auth URL %q CORS %q, want %q %q [%s]", cfg.Issuer, cfg.AuthURL, cfg.CORSOrigins, tc.issuer, tc.authURL, tc.cors)
			}
		})
	}

	// A shared .env moves both services the same way.
	os.WriteFile(".env", []byte("LATCHKEY_ADDR=:3200\n"), 0o600)
	t.Cleanup(func() { os.Remove(".env") })
	serve, books := mustLoadConfig(t, serveCmd, nil), mustLoadConfig(t, booksCmd, nil)
	if serve.Issuer != "http://localhost:3200" || books.Issuer != serve.Issuer || books.AuthURL != serve.Issuer {
		t.Errorf("from .env: serve issuer %q, books issuer %q and auth URL %q, want http://localhost:3200", serve.Issuer, books.Issuer, books.AuthURL)
	}

	for _, bad := range []string{"3000", "localhost", ""} {
		var stderr bytes.Buffer
		_, _, err := loadConfig(serveCmd, []string{"--addr", bad}, env{getenv: func(string) string { return "" }, stderr: &stderr}, nil)
		if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "LATCHKEY_ADDR") {
			t.Errorf("--addr %q: exit %d, %q; want 2 naming LATCHKEY_ADDR", bad, code, stderr.String())
		}
	}
}

// TestIssuerOfPortZero: a server on port 0 names the port it really got,
// in discovery and in the tokens it issues.
func TestIssuerOfPortZero(t *testing.T) {
	dir := t.TempDir()
	a, _ := startCmd(t, "serve", map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "auth.db"),
		"LATCHKEY_ADMIN_USERNAME": "root", "LATCHKEY_ADMIN_PASSWORD": "correct horse battery", "LATCHKEY_LOG_LEVEL": "error",
	})
	base := "http://" + a["auth"]
	st, b := call(t, "GET", base+"/.well-known/openid-configuration", "", nil)
	var disco struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(b, &disco); st != 200 || err != nil {
		t.Fatalf("discovery: %d %s", st, b)
	}
	if disco.Issuer != base || disco.JWKSURI != base+"/.well-known/jwks.json" {
		t.Errorf("discovery issuer %q jwks_uri %q, want them under %s", disco.Issuer, disco.JWKSURI, base)
	}
	access, _ := loginAs(t, base, "root", "correct horse battery")
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", access)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	json.Unmarshal(payload, &claims)
	if claims.Iss != base {
		t.Errorf("iss %q, want %q", claims.Iss, base)
	}
	if st, _ := call(t, "GET", base+"/me", access, nil); st != 200 {
		t.Errorf("/me with the token: %d (the server does not accept its own issuer)", st)
	}
}

func TestUnknownKeysWarn(t *testing.T) {
	inTempDir(t)
	const secretValue = "a-misspelt-secret-value-nobody-may-see"
	os.WriteFile(".env", []byte(strings.Join([]string{
		"LATCHKEY_ACESS_TTL=1h",            // misspelt: one letter short
		"LATCHKEY_ISSUER=http://x.example", // known
		"LATCHKEY_BOOKS_ADDR=:4001",        // known, of another command
		"LATCHKEY_BOTH=1",
		"OTHER_APP_SETTING=1", // not ours to judge
	}, "\n")+"\n"), 0o600)
	environ := []string{
		"PATH=/usr/bin",
		"LATCHKEY_AUDEINCE=x", // transposed letters
		"latchkey_log_level=debug",
		"LATCHKEY_ACCESS_TOKEN_SECRT=" + secretValue, // misspelt, and a secret
		"LATCHKEY_COOKIE_SECURE_NOW=1",
		"LATCHKEY_TEST_POSTGRES_URL=postgres://x", // the test suite's, not the binary's
		"LATCHKEY_REQUIRE_NODE=1",
		"LATCHKEY_BOTH=1",
		"LATCHKEY_WHATEVER=1",
		"LATCHKEY_ADDR=127.0.0.1:0",
	}
	lookup := func(k string) string {
		for _, kv := range environ {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	}
	var stderr bytes.Buffer
	cfg, _, err := loadConfig(serveCmd, nil, env{getenv: lookup, environ: func() []string { return environ }, stderr: &stderr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AccessTTL != latchkey.DefaultAccessTTL {
		t.Errorf("a misspelt key took effect: access TTL %s", cfg.AccessTTL)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	want := []struct{ key, says string }{
		{"LATCHKEY_ACCESS_TOKEN_SECRT (set in the environment)", "did you mean ACCESS_TOKEN_SECRET?"},
		{"LATCHKEY_ACESS_TTL (set in .env)", "did you mean LATCHKEY_ACCESS_TTL?"},
		{"LATCHKEY_AUDEINCE (set in the environment)", "did you mean LATCHKEY_AUDIENCE?"},
		{"LATCHKEY_BOTH (set in the environment and .env)", "is not a latchkey setting and is ignored"},
		{"LATCHKEY_COOKIE_SECURE_NOW (set in the environment)", "did you mean LATCHKEY_COOKIE_SECURE?"},
		{"LATCHKEY_WHATEVER (set in the environment)", "is not a latchkey setting and is ignored"},
		{"latchkey_log_level (set in the environment)", "did you mean LATCHKEY_LOG_LEVEL?"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d warning lines, want %d:\n%s", len(lines), len(want), stderr.String())
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "latchkey: warning: "+w.key) || !strings.Contains(lines[i], w.says) {
			t.Errorf("line %d = %q, want %s ... %s", i, lines[i], w.key, w.says)
		}
	}
	for _, l := range lines {
		if strings.Contains(l, "LATCHKEY_WHATEVER") && strings.Contains(l, "did you mean") {
			t.Errorf("a far-off key got a suggestion: %q", l)
		}
	}
	if strings.Contains(stderr.String(), secretValue) {
		t.Error("a warning repeats the value of a misspelt secret")
	}
}

// TestCommandHelp: every -h exits 0 and shows the command's own flags and
// no other command's.
func TestCommandHelp(t *testing.T) {
	inTempDir(t)
	for _, tc := range []struct {
		args     []string
		code     int
		has, not []string
	}{
		{[]string{"user", "add", "-h"}, 0, []string{"-role", "-database-url", "USERNAME"}, []string{"-issuer", "-signing-alg", "-access-token-secret", "-addr"}},
		{[]string{"user", "-h"}, 0, []string{"user add"}, nil},
		{[]string{"help", "user"}, 0, []string{"user add"}, nil},
		{[]string{"help", "user", "add"}, 0, []string{"-role"}, nil},
		{[]string{"user"}, 2, []string{"user add"}, nil},
		{[]string{"user", "remove"}, 2, []string{"user add"}, nil},
		{[]string{"serve", "-h"}, 0, []string{"-addr", "-issuer", "LATCHKEY_ACCESS_TTL=15m"}, []string{"-role", "-books-addr"}},
		{[]string{"books", "-h"}, 0, []string{"-books-addr", "-auth-url"}, []string{"-role", "-admin-password"}},
		{[]string{"demo", "-h"}, 0, []string{"LATCHKEY_ADDR=127.0.0.1:3000", "LATCHKEY_BOOKS_ADDR=127.0.0.1:4000"}, []string{"-role"}},
		{[]string{"secret", "-h"}, 0, []string{"Usage: latchkey secret"}, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := runEnv(context.Background(), append([]string{"latchkey"}, tc.args...), env{
				getenv: func(string) string { return "" }, stdin: strings.NewReader("must-not-be-read\n"), stdout: &out, stderr: &out,
			})
			if code := exitCode(err, &out); code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out.String())
			}
			for _, s := range tc.has {
				if !strings.Contains(out.String(), s) {
					t.Errorf("help lacks %q:\n%s", s, out.String())
				}
			}
			for _, s := range tc.not {
				if strings.Contains(out.String(), "  "+s+" ") {
					t.Errorf("help shows %q, which is not this command's:\n%s", s, out.String())
				}
			}
		})
	}
}
