package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// TestOversizedBodyThroughProxy: behind a reverse proxy that sends
// Connection: close upstream (nginx's default), a client sending a body
// over 1 MiB gets the contract's 413 every time, not a reset connection
// that the proxy turns into a 502. net/http answers an oversized body
// gracefully (Connection: close, a short drain before closing) only when
// MaxBytesReader sees the connection's own ResponseWriter.
func TestOversizedBodyThroughProxy(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	target, _ := url.Parse(s.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{DisableKeepAlives: true}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)

	body := bytes.Repeat([]byte("a"), 4<<20)
	const tries = 20
	got := map[int]int{}
	for range tries {
		req, _ := http.NewRequest("POST", proxy.URL+"/register", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got[-1]++
			continue
		}
		resp.Body.Close()
		got[resp.StatusCode]++
	}
	if got[http.StatusRequestEntityTooLarge] != tries {
		t.Errorf("statuses of %d oversized requests through a proxy = %v (-1: transport error); want all 413", tries, got)
	}
}
