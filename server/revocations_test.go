package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func TestRevocationFeedOverHTTP(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)

	r := s.do(t, "GET", "/.well-known/revocations", nil)
	etag := r.header.Get("ETag")
	var doc struct {
		Issuer      string `json:"issuer"`
		GeneratedAt string `json:"generatedAt"`
		Sessions    []struct {
			SID       string `json:"sid"`
			RevokedAt string `json:"revokedAt"`
		} `json:"sessions"`
		Users []json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || r.status != 200 || etag == "" {
		t.Fatalf("feed: %d %s, ETag %q", r.status, r.body, etag)
	}
	if doc.Issuer != "http://auth.test" || doc.Sessions == nil || doc.Users == nil || len(doc.Sessions) != 0 {
		t.Errorf("empty feed = %s; want the issuer and two empty lists", r.body)
	}
	if _, err := time.Parse(time.RFC3339, doc.GeneratedAt); err != nil {
		t.Errorf("generatedAt %q: %v", doc.GeneratedAt, err)
	}
	if r.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		if r := s.do(t, "GET", "/.well-known/revocations", nil, "If-None-Match", inm); r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("If-None-Match %s: %d %q; want 304 with no body", inm, r.status, r.body)
		}
	}
	if r := s.do(t, "GET", "/.well-known/revocations", nil, "If-None-Match", `"stale"`); r.status != 200 {
		t.Errorf("a stale ETag: %d, want 200", r.status)
	}

	_, refresh := s.login(t, "anna", "password123member")
	if r := s.do(t, "POST", "/logout", map[string]string{"refreshToken": refresh}); r.status != 204 {
		t.Fatal(r.status)
	}
	// The feed is rebuilt at most once per feedRefresh.
	deadline := time.Now().Add(3 * feedRefresh)
	for {
		r = s.do(t, "GET", "/.well-known/revocations", nil, "If-None-Match", etag)
		if r.status == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	json.Unmarshal(r.body, &doc)
	if r.status != 200 || len(doc.Sessions) != 1 || r.header.Get("ETag") == etag {
		t.Errorf("after a logout: %d %s; want the session listed under a new ETag", r.status, r.body)
	}
}

// slowRevocations holds Revocations until released, as a slow database.
type slowRevocations struct {
	latchkey.Store
	hold    atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *slowRevocations) Revocations(ctx context.Context, since time.Time) (*latchkey.Revocations, error) {
	if s.hold.Load() {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Store.Revocations(ctx, since)
}

// TestSlowDatabaseDelaysOnePoll: while one poller rebuilds the feed from
// a slow database, the others get the copy in hand at once.
func TestSlowDatabaseDelaysOnePoll(t *testing.T) {
	slow := &slowRevocations{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) { slow.Store = c.Store; c.Store = slow }})
	first := s.do(t, "GET", "/.well-known/revocations", nil)
	if first.status != 200 {
		t.Fatalf("feed: %d %s", first.status, first.body)
	}
	time.Sleep(feedRefresh + 50*time.Millisecond)
	slow.hold.Store(true)
	done := make(chan response, 1)
	go func() { done <- s.do(t, "GET", "/.well-known/revocations", nil) }()
	<-slow.entered // that poll is rebuilding, held in the database
	others := make(chan response, 1)
	go func() { others <- s.do(t, "GET", "/.well-known/revocations", nil) }()
	select {
	case other := <-others:
		if other.status != 200 || other.header.Get("ETag") != first.header.Get("ETag") {
			t.Errorf("a poll during a slow rebuild: %d, ETag %q; want the copy in hand", other.status, other.header.Get("ETag"))
		}
	case <-time.After(2 * time.Second):
		t.Error("a poll during a slow rebuild waited for the database")
	}
	slow.hold.Store(false)
	close(slow.release)
	if r := <-done; r.status != 200 {
		t.Errorf("the rebuilding poll: %d %s", r.status, r.body)
	}
}

// TestRevocationFeedGzip: a poller that accepts gzip gets the feed
// compressed (Go's HTTP client asks for it by itself), others get it as
// JSON, and both are the same document.
func TestRevocationFeedGzip(t *testing.T) {
	s := newTestServer(t, serverOpts{})
	s.mustUser(t, "anna", "password123member", latchkey.RoleMember)
	_, refresh := s.login(t, "anna", "password123member")
	s.do(t, "POST", "/logout", map[string]string{"refreshToken": refresh})

	plain := s.do(t, "GET", "/.well-known/revocations", nil, "Accept-Encoding", "identity")
	zipped := s.do(t, "GET", "/.well-known/revocations", nil, "Accept-Encoding", "br, gzip;q=0.8")
	if plain.header.Get("Content-Encoding") != "" || zipped.header.Get("Content-Encoding") != "gzip" ||
		!strings.Contains(zipped.header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("encodings %q and %q, Vary %q", plain.header.Get("Content-Encoding"), zipped.header.Get("Content-Encoding"), zipped.header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped.body))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain.body) || !bytes.Contains(plain.body, []byte(`"sid"`)) {
		t.Errorf("gzipped feed = %s (%v), plain = %s", unzipped, err, plain.body)
	}
	if r := s.do(t, "GET", "/.well-known/revocations", nil, "Accept-Encoding", "gzip;q=0"); r.header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got %q", r.header.Get("Content-Encoding"))
	}
}
