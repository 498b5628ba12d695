package main

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestMetricsAddr: with LATCHKEY_METRICS_ADDR the series are served on
// that address and only there.
func TestMetricsAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	auth := startServe(t, map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "auth.db"),
		"LATCHKEY_METRICS_ADDR": addr, "LATCHKEY_LOG_LEVEL": "warn",
	})
	if st, _ := call(t, "GET", auth+"/metrics", "", nil); st != http.StatusNotFound {
		t.Errorf("/metrics on the API port: %d, want 404", st)
	}
	call(t, "GET", auth+"/healthz", "", nil)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `latchkey_http_requests_total{code="200",route="GET /healthz",service="auth"} 1`) ||
		!strings.Contains(string(body), `latchkey_signing_keys{state="active"} 1`) {
		t.Errorf("metrics: %d\n%.2000s", resp.StatusCode, body)
	}
}
