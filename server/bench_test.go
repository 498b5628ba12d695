package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/server"
)

// benchHandler is the auth server's handler over a SQLite file in a
// temporary directory (WAL, synchronous=FULL, as `latchkey serve` opens it),
// signing ES256, with user anna. Argon2 is cheap because these benchmarks
// measure refresh, which hashes no password. Request logging goes through a
// text handler to io.Discard, so its formatting cost is counted.
func benchHandler(b *testing.B) http.Handler {
	b.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := latchkeytest.New(b, latchkeytest.Options{RealTime: true, Config: func(c *latchkey.Config) {
		c.Logger = logger
		c.Issuer = "http://localhost:3000"
		c.ReuseGrace = latchkey.DefaultReuseGrace
	}})
	e.MustUser(b, "anna", "password123member", latchkey.RoleMember)
	svc, keys := e.Service, e.Keys
	h, err := server.New(server.Config{Service: svc, Keys: keys, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	return h
}

type benchTokens struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
}

func benchPost(b *testing.B, h http.Handler, path, body string) benchTokens {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("POST %s: status %d: %s", path, w.Code, w.Body)
	}
	var t benchTokens
	if err := json.Unmarshal(w.Body.Bytes(), &t); err != nil {
		b.Fatal(err)
	}
	return t
}

func refreshBody(tok string) string { return `{"refreshToken":"` + tok + `"}` }

// BenchmarkHTTPRefresh is POST /token through the whole handler (access
// log, JSON decoding, Service.Refresh on SQLite, ES256 signing, JSON
// encoding), each iteration rotating the chain the previous one returned.
// No network: compare with BenchmarkHTTPRefreshLoopback for the HTTP stack.
func BenchmarkHTTPRefresh(b *testing.B) {
	h := benchHandler(b)
	refresh := benchPost(b, h, "/login", `{"username":"anna","password":"password123member"}`).RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		refresh = benchPost(b, h, "/token", refreshBody(refresh)).RefreshToken
	}
}

// BenchmarkHTTPRefreshLoopback is the same through a real HTTP server on
// 127.0.0.1 with a keep-alive client in the same process.
func BenchmarkHTTPRefreshLoopback(b *testing.B) {
	h := benchHandler(b)
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := srv.Client()
	post := func(path, body string) benchTokens {
		resp, err := c.Post(srv.URL+path, "application/json", bytes.NewBufferString(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("POST %s: %d %s %v", path, resp.StatusCode, data, err)
		}
		var t benchTokens
		if err := json.Unmarshal(data, &t); err != nil {
			b.Fatal(err)
		}
		return t
	}
	refresh := post("/login", `{"username":"anna","password":"password123member"}`).RefreshToken
	b.ReportAllocs()
	for b.Loop() {
		refresh = post("/token", refreshBody(refresh)).RefreshToken
	}
}
