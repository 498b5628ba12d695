package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startCmd runs one latchkey command in-process and returns its addresses
// and a stop function.
func startCmd(tb testing.TB, name string, vars map[string]string) (map[string]string, func()) {
	tb.Helper()
	addrs := make(chan map[string]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runEnv(ctx, []string{"latchkey", name}, env{
			getenv: func(k string) string { return vars[k] }, stdin: strings.NewReader(""),
			stdout: io.Discard, stderr: io.Discard, ready: func(a map[string]string) { addrs <- a },
		})
	}()
	select {
	case a := <-addrs:
		stopped := false
		stop := func() {
			if !stopped {
				stopped = true
				cancel()
				<-done
			}
		}
		tb.Cleanup(stop)
		return a, stop
	case err := <-done:
		cancel()
		tb.Fatalf("%s exited: %v", name, err)
	case <-time.After(20 * time.Second):
		cancel()
		tb.Fatalf("%s did not start", name)
	}
	return nil, nil
}

func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func status(tb testing.TB, url string) int {
	tb.Helper()
	res, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestSeparateServices runs `latchkey books` and `latchkey serve` as the
// separate services they are in production: the books server starts first
// and is not ready until it can fetch the JWKS, then verifies tokens
// locally, and keeps doing so after the auth server goes away.
func TestSeparateServices(t *testing.T) {
	dir := t.TempDir()
	authAddr := freePort(t)
	authURL := "http://" + authAddr
	common := map[string]string{
		"LATCHKEY_ISSUER":    authURL,
		"LATCHKEY_AUTH_URL":  authURL,
		"LATCHKEY_LOG_LEVEL": "error",
	}
	booksVars := map[string]string{"LATCHKEY_BOOKS_ADDR": "127.0.0.1:0", "LATCHKEY_BOOKS_DATABASE_URL": "sqlite:" + filepath.Join(dir, "books.db")}
	authVars := map[string]string{
		"LATCHKEY_ADDR": authAddr, "LATCHKEY_DATABASE_URL": "sqlite:" + filepath.Join(dir, "auth.db"),
		"LATCHKEY_ADMIN_USERNAME": "root", "LATCHKEY_ADMIN_PASSWORD": "correct horse battery",
	}
	for k, v := range common {
		booksVars[k], authVars[k] = v, v
	}

	b, _ := startCmd(t, "books", booksVars)
	booksURL := "http://" + b["books"]
	if st := status(t, booksURL+"/readyz"); st != 503 {
		t.Errorf("books /readyz with the auth server down: %d, want 503", st)
	}
	if st := status(t, booksURL+"/healthz"); st != 200 {
		t.Errorf("books /healthz: %d", st)
	}

	_, stopAuth := startCmd(t, "serve", authVars)
	waitReady(t, booksURL+"/readyz")
	access, _ := loginAs(t, authURL, "root", "correct horse battery")
	if st, body := call(t, "GET", booksURL+"/books", access, nil); st != 200 || string(body) != "[]\n" && string(body) != "[]" {
		t.Fatalf("books outside demo mode: %d %s (want an empty list: no seeding outside demo)", st, body)
	}
	// Demo users exist only in demo mode.
	if st, _ := call(t, "POST", authURL+"/login", "", map[string]string{"username": "john", "password": "password123admin"}); st != 401 {
		t.Errorf("john outside demo mode: %d, want 401", st)
	}

	stopAuth()
	// Keys are cached: the books server neither needs nor asks the auth
	// server to verify a token.
	if st, body := call(t, "POST", booksURL+"/books", access, map[string]any{"author": "A", "title": "Offline", "pages": 1, "year": 2026}); st != 201 {
		t.Errorf("write with the auth server down: %d %s", st, body)
	}
}
