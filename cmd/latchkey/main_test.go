package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// startDemo runs `latchkey demo` in-process on loopback ports, as main
// would, and returns the base URLs. It stops when the test ends.
func startDemo(tb testing.TB, dir string, extraEnv map[string]string) (authURL, booksURL string, stop func()) {
	tb.Helper()
	vars := map[string]string{
		"LATCHKEY_ADDR":               "127.0.0.1:0",
		"LATCHKEY_BOOKS_ADDR":         "127.0.0.1:0",
		"LATCHKEY_DATABASE_URL":       "sqlite:" + filepath.Join(dir, "auth.db"),
		"LATCHKEY_BOOKS_DATABASE_URL": "sqlite:" + filepath.Join(dir, "books.db"),
		"LATCHKEY_LOG_LEVEL":          "warn",
	}
	for k, v := range extraEnv {
		vars[k] = v
	}
	addrs := make(chan map[string]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr syncBuffer
	go func() {
		done <- runEnv(ctx, []string{"latchkey", "demo"}, env{
			getenv: func(k string) string { return vars[k] },
			stdin:  strings.NewReader(""),
			stdout: io.Discard,
			stderr: &stderr,
			ready:  func(a map[string]string) { addrs <- a },
		})
	}()
	var a map[string]string
	select {
	case a = <-addrs:
	case err := <-done:
		cancel()
		tb.Fatalf("demo exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		tb.Fatal("demo did not start")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("demo: %v", err)
			}
			for _, secret := range []string{"password123admin", "password123member"} {
				if strings.Contains(stderr.String(), secret) {
					tb.Errorf("the log contains a password")
				}
			}
		})
	}
	tb.Cleanup(stop)
	authURL, booksURL = "http://"+a["auth"], "http://"+a["books"]
	waitReady(tb, booksURL+"/readyz")
	return authURL, booksURL, stop
}

func waitReady(tb testing.TB, url string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if res, err := http.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s never became ready", url)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func call(tb testing.TB, method, url, bearerToken string, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+bearerToken)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func loginAs(tb testing.TB, authURL, user, pass string) (access, refresh string) {
	tb.Helper()
	st, b := call(tb, "POST", authURL+"/login", "", map[string]string{"username": user, "password": pass})
	if st != 200 {
		tb.Fatalf("login %s: %d %s", user, st, b)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m["accessToken"].(string), m["refreshToken"].(string)
}

// TestTutorialFlow is the README's curl walkthrough over real HTTP.
func TestTutorialFlow(t *testing.T) {
	authURL, booksURL, _ := startDemo(t, t.TempDir(), nil)

	johnAccess, johnRefresh := loginAs(t, authURL, "john", "password123admin")
	st, b := call(t, "GET", booksURL+"/books", johnAccess, nil)
	if st != 200 {
		t.Fatalf("GET /books: %d %s", st, b)
	}
	var seeded []map[string]any
	json.Unmarshal(b, &seeded)
	if len(seeded) != 3 || seeded[0]["title"] != "Things Fall Apart" {
		t.Fatalf("seed books = %s", b)
	}

	book := map[string]any{"author": "Chinua Achebe", "country": "Nigeria", "language": "English", "pages": 181, "title": "No Longer at Ease", "year": 1960}
	if st, b := call(t, "POST", booksURL+"/books", johnAccess, book); st != 201 {
		t.Fatalf("john adds a book: %d %s", st, b)
	}

	annaAccess, _ := loginAs(t, authURL, "anna", "password123member")
	if st, _ := call(t, "GET", booksURL+"/books", annaAccess, nil); st != 200 {
		t.Errorf("anna reads books: %d", st)
	}
	if st, b := call(t, "POST", booksURL+"/books", annaAccess, book); st != 403 || !bytes.Contains(b, []byte("insufficient_role")) {
		t.Errorf("anna adds a book: %d %s, want 403 insufficient_role", st, b)
	}
	if st, _ := call(t, "GET", booksURL+"/books", "", nil); st != 401 {
		t.Errorf("no token: %d, want 401", st)
	}

	st, b = call(t, "POST", authURL+"/token", "", map[string]string{"token": johnRefresh})
	if st != 200 {
		t.Fatalf("refresh: %d %s", st, b)
	}
	var fresh map[string]any
	json.Unmarshal(b, &fresh)
	if st, _ := call(t, "GET", booksURL+"/books", fresh["accessToken"].(string), nil); st != 200 {
		t.Errorf("books with refreshed token: %d", st)
	}

	newRefresh := fresh["refreshToken"].(string)
	if st, _ := call(t, "DELETE", authURL+"/logout", "", map[string]string{"token": newRefresh}); st != 204 {
		t.Errorf("logout: %d", st)
	}
	if st, b := call(t, "POST", authURL+"/token", "", map[string]string{"token": newRefresh}); st != 401 || !bytes.Contains(b, []byte("invalid_grant")) {
		t.Errorf("refresh after logout: %d %s", st, b)
	}
}

// TestRestartKeepsSessionsKeysAndBooks stops the demo and starts it again
// on the same data directory.
func TestRestartKeepsSessionsKeysAndBooks(t *testing.T) {
	dir := t.TempDir()
	// The issuer is fixed, as in production: on port 0 it would otherwise
	// follow the port, which changes with every start.
	fixed := map[string]string{"LATCHKEY_ISSUER": "http://localhost:3000"}
	authURL, booksURL, stop := startDemo(t, dir, fixed)
	access, refresh := loginAs(t, authURL, "john", "password123admin")
	book := map[string]any{"author": "A", "title": "Persisted", "pages": 10, "year": -300}
	if st, b := call(t, "POST", booksURL+"/books", access, book); st != 201 {
		t.Fatalf("add book: %d %s", st, b)
	}
	stop()

	authURL, booksURL, _ = startDemo(t, dir, fixed)
	// The old access token still verifies: the signing key persisted.
	st, b := call(t, "GET", booksURL+"/books", access, nil)
	if st != 200 || !bytes.Contains(b, []byte("Persisted")) {
		t.Fatalf("books after restart: %d %s", st, b)
	}
	if n := bytes.Count(b, []byte(`"title"`)); n != 4 {
		t.Errorf("%d books after restart, want 3 seeds + 1 (seeding is idempotent)", n)
	}
	if st, b := call(t, "POST", authURL+"/token", "", map[string]string{"refreshToken": refresh}); st != 200 {
		t.Errorf("refresh after restart: %d %s", st, b)
	}
}

func TestSharedSecretMode(t *testing.T) {
	secret := "0123456789abcdef0123456789abcdef0123456789abcdef"
	authURL, booksURL, _ := startDemo(t, t.TempDir(), map[string]string{"ACCESS_TOKEN_SECRET": secret})
	access, _ := loginAs(t, authURL, "john", "password123admin")
	header, _, _ := strings.Cut(access, ".")
	if !strings.HasPrefix(header, "eyJhbGciOiJIUzI1NiIs") {
		t.Errorf("header %s is not HS256", header)
	}
	if st, b := call(t, "GET", booksURL+"/books", access, nil); st != 200 {
		t.Errorf("books: %d %s", st, b)
	}
	if _, b := call(t, "GET", authURL+"/.well-known/jwks.json", "", nil); string(bytes.TrimSpace(b)) != `{"keys":[]}` {
		t.Errorf("jwks = %s", b)
	}
}

func TestBadConfigurationExits2(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad duration", map[string]string{"LATCHKEY_ACCESS_TTL": "soon"}, nil, "LATCHKEY_ACCESS_TTL"},
		{"negative duration", map[string]string{"LATCHKEY_REFRESH_IDLE_TTL": "-5m"}, nil, "LATCHKEY_REFRESH_IDLE_TTL"},
		{"zero access ttl", map[string]string{"LATCHKEY_ACCESS_TTL": "0"}, nil, "LATCHKEY_ACCESS_TTL"},
		{"short secret", map[string]string{"ACCESS_TOKEN_SECRET": "hunter2hunter2"}, nil, "ACCESS_TOKEN_SECRET"},
		{"short secret by alias", map[string]string{"TOKEN_SECRET": "tooshort"}, nil, "ACCESS_TOKEN_SECRET"},
		{"placeholder secret", map[string]string{"ACCESS_TOKEN_SECRET": strings.Repeat("ab", 20)}, nil, "ACCESS_TOKEN_SECRET"},
		{"unknown algorithm", map[string]string{"LATCHKEY_SIGNING_ALG": "none"}, nil, "LATCHKEY_SIGNING_ALG"},
		{"bad flag value", nil, []string{"--access-ttl", "forever"}, "LATCHKEY_ACCESS_TTL"},
		{"unknown flag", nil, []string{"--nope"}, "nope"},
		{"bad registration", map[string]string{"LATCHKEY_REGISTRATION": "maybe"}, nil, "LATCHKEY_REGISTRATION"},
		{"unusable database", map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "missing-dir", "x", "\x00bad")}, nil, "LATCHKEY_DATABASE_URL"},
		{"unsupported database", map[string]string{"LATCHKEY_DATABASE_URL": "mysql://x"}, nil, "LATCHKEY_DATABASE_URL"},
		{"admin without password", map[string]string{"LATCHKEY_ADMIN_USERNAME": "root"}, nil, "LATCHKEY_ADMIN_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			vars := map[string]string{"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "a.db")}
			for k, v := range tc.env {
				vars[k] = v
			}
			err := runEnv(context.Background(), append([]string{"latchkey", "serve"}, tc.args...), env{
				getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr,
			})
			code := exitCode(err, &stderr)
			if code != 2 {
				t.Fatalf("exit %d, want 2; err %v", code, err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tc.want) {
				t.Errorf("last line %q does not name %s", last, tc.want)
			}
			if s := tc.env["ACCESS_TOKEN_SECRET"] + tc.env["TOKEN_SECRET"]; s != "" && strings.Contains(stderr.String(), s) {
				t.Error("the error repeats the secret")
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	os.Chdir(dir)
	os.WriteFile(".env", []byte("LATCHKEY_ACCESS_TTL=1h\nLATCHKEY_AUDIENCE=from-dotenv\nLATCHKEY_ISSUER=https://dotenv.example\n"), 0o600)
	cfg, _, err := loadConfig(serveCmd, []string{"--issuer", "https://flag.example"}, env{
		getenv: func(k string) string {
			if k == "LATCHKEY_AUDIENCE" {
				return "from-env"
			}
			return ""
		}, stderr: io.Discard}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AccessTTL != time.Hour || cfg.Audience != "from-env" || cfg.Issuer != "https://flag.example" {
		t.Errorf("ttl %s audience %s issuer %s", cfg.AccessTTL, cfg.Audience, cfg.Issuer)
	}
	if cfg.RefreshIdleTTL != 7*24*time.Hour || cfg.ReuseGrace != 10*time.Second {
		t.Errorf("defaults: idle %s grace %s", cfg.RefreshIdleTTL, cfg.ReuseGrace)
	}
}

func TestUserAdd(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"LATCHKEY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "auth.db")}
	add := func(stdin string, args ...string) (error, string) {
		var out, errOut bytes.Buffer
		err := runEnv(context.Background(), append([]string{"latchkey", "user", "add"}, args...), env{
			getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		})
		return err, out.String() + errOut.String()
	}
	if err, out := add("s3cret-passphrase\n", "--role", "admin", "root"); err != nil || !strings.Contains(out, "created admin root") {
		t.Fatalf("add: %v %s", err, out)
	}
	if err, _ := add("s3cret-passphrase\n", "root"); exitCode(err, io.Discard) != 2 {
		t.Errorf("duplicate user: %v", err)
	}
	if err, _ := add("short\n", "other"); exitCode(err, io.Discard) != 2 {
		t.Errorf("short password: %v", err)
	}
	if err, _ := add("s3cret-passphrase\n", "--role", "owner", "x1x"); exitCode(err, io.Discard) != 2 {
		t.Errorf("bad role: %v", err)
	}

	// The new admin can log in on a server started on the same database.
	vars["LATCHKEY_ADDR"] = "127.0.0.1:0"
	addrs := make(chan map[string]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEnv(ctx, []string{"latchkey", "serve"}, env{getenv: func(k string) string { return vars[k] },
			stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, ready: func(a map[string]string) { addrs <- a }})
	}()
	a := <-addrs
	loginAs(t, "http://"+a["auth"], "root", "s3cret-passphrase")
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}

func TestSecretAndVersion(t *testing.T) {
	var out bytes.Buffer
	e := env{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard}
	if err := runEnv(context.Background(), []string{"latchkey", "secret"}, e); err != nil {
		t.Fatal(err)
	}
	s1 := strings.TrimSpace(out.String())
	out.Reset()
	runEnv(context.Background(), []string{"latchkey", "secret"}, e)
	if len(s1) != 128 || s1 == strings.TrimSpace(out.String()) {
		t.Errorf("secret %q: want 128 hex characters, different each time", s1)
	}
	if err := checkSecret(s1); err != nil {
		t.Errorf("our own secret fails our check: %v", err)
	}
	if code := exitCode(runEnv(context.Background(), []string{"latchkey", "frobnicate"}, e), io.Discard); code != 2 {
		t.Errorf("unknown command exit %d", code)
	}
	if code := exitCode(runEnv(context.Background(), []string{"latchkey", "serve", "-h"}, e), io.Discard); code != 0 {
		t.Errorf("serve -h exit %d", code)
	}

	out.Reset()
	if err := runEnv(context.Background(), []string{"latchkey", "version"}, e); err != nil {
		t.Fatal(err)
	}
	bi, _ := debug.ReadBuildInfo()
	if got, want := out.String(), "latchkey "+versionOf("", bi)+"\n"; got != want {
		t.Errorf("version printed %q, want %q", got, want)
	}
	if !versionLine.MatchString(out.String()) {
		t.Errorf("version printed %q, want a module version, dev-COMMIT or dev", out.String())
	}
}

// versionLine is what `latchkey version` may print.
var versionLine = regexp.MustCompile(`^latchkey (v[0-9]+\.[0-9]+\.[0-9]+\S*|dev-[0-9a-f]{12}(\+dirty)?|dev)\n$`)

func TestVersionOf(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	for _, tc := range []struct {
		name    string
		stamped string
		bi      *debug.BuildInfo
		want    string
	}{
		{"no build info", "", nil, "dev"},
		{"stamped wins", "v1.2.3", &debug.BuildInfo{Main: debug.Module{Version: "v1.0.0"}}, "v1.2.3"},
		{"stamped without build info", "v1.2.3", nil, "v1.2.3"},
		{"go install @version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"pseudo-version from the checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201120000-0123456789ab+dirty"}}, "v0.0.0-20261201120000-0123456789ab+dirty"},
		{"devel with a VCS stamp", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "false")}, "dev-0123456789ab"},
		{"devel, modified tree", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(rev, "true")}, "dev-0123456789ab+dirty"},
		{"-buildvcs=false", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"short revision ignored", "", &debug.BuildInfo{Settings: vcs("abc", "false")}, "dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionOf(tc.stamped, tc.bi); got != tc.want {
				t.Errorf("versionOf = %q, want %q", got, tc.want)
			}
			if !versionLine.MatchString("latchkey " + tc.want + "\n") {
				t.Errorf("%q does not match the version line's pattern", tc.want)
			}
		})
	}
}

// TestVersionStamp: the version a release build sets at link time is what
// the binary prints, whatever the toolchain could record.
func TestVersionStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out, err := exec.Command(buildBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "latchkey "+testBuildVersion+"\n" {
		t.Errorf("version printed %q, want %q", out, "latchkey "+testBuildVersion)
	}
}

// TestSecretChange: while a shared secret changes, tokens signed with the
// previous one keep working at the auth server and at the books server
// (ACCESS_TOKEN_SECRET_PREVIOUS), new ones are signed with the new secret
// only, and without the setting the old tokens stop.
func TestSecretChange(t *testing.T) {
	dir := t.TempDir()
	old := "0123456789abcdef0123456789abcdef0123456789abcdef"
	next := "fedcba9876543210fedcba9876543210fedcba9876543210"
	env := map[string]string{"LATCHKEY_REVOCATION_POLL": "0", "LATCHKEY_ISSUER": "http://localhost:3000", "LATCHKEY_AUTH_URL": "http://localhost:3000"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range env {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	authURL, _, stop := startDemo(t, dir, with("ACCESS_TOKEN_SECRET", old))
	before, _ := loginAs(t, authURL, "john", "password123admin")
	stop()

	authURL, booksURL, stop := startDemo(t, dir, with("ACCESS_TOKEN_SECRET", next, "ACCESS_TOKEN_SECRET_PREVIOUS", old))
	for _, u := range []string{authURL + "/me", booksURL + "/books"} {
		if st, b := call(t, "GET", u, before, nil); st != 200 {
			t.Errorf("a token of the previous secret at %s: %d %s", u, st, b)
		}
	}
	after, _ := loginAs(t, authURL, "john", "password123admin")
	stop()

	authURL, booksURL, _ = startDemo(t, dir, with("ACCESS_TOKEN_SECRET", next))
	for _, u := range []string{authURL + "/me", booksURL + "/books"} {
		if st, _ := call(t, "GET", u, before, nil); st != 401 {
			t.Errorf("a token of the old secret at %s once the change is over: %d, want 401", u, st)
		}
		if st, b := call(t, "GET", u, after, nil); st != 200 {
			t.Errorf("a token signed during the change at %s: %d %s", u, st, b)
		}
	}
}
