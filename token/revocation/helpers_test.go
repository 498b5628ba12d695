package revocation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

const testIssuer = "https://auth.test"

// fixedNow is where every test clock starts.
var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a settable clock for Config.Now, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: fixedNow} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// feedDoc builds a feed document as the auth server writes it.
type feedDoc struct {
	Issuer      string      `json:"issuer"`
	GeneratedAt string      `json:"generatedAt"`
	Sessions    []feedEntry `json:"sessions"`
	Users       []feedEntry `json:"users"`
}

type feedEntry struct {
	SID       string `json:"sid,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Gen       int64  `json:"gen,omitempty"`
	RevokedAt string `json:"revokedAt"`
}

// newDoc lists sids and subs (with gen) at generatedAt at.
func newDoc(at time.Time, sids []string, users map[string]int64) []byte {
	d := feedDoc{Issuer: testIssuer, GeneratedAt: at.UTC().Format(time.RFC3339), Sessions: []feedEntry{}, Users: []feedEntry{}}
	for _, s := range sids {
		d.Sessions = append(d.Sessions, feedEntry{SID: s, RevokedAt: d.GeneratedAt})
	}
	for sub, gen := range users {
		d.Users = append(d.Users, feedEntry{Sub: sub, Gen: gen, RevokedAt: d.GeneratedAt})
	}
	b, _ := json.Marshal(d)
	return b
}

// feedServer serves a document the test sets, with an ETag that names it
// and 304 for a matching If-None-Match, as the auth server does. When
// handler is set it answers instead, for hostile feeds.
type feedServer struct {
	*httptest.Server
	mu      sync.Mutex
	doc     []byte
	etag    string
	handler http.HandlerFunc
	n       int
	inm     []string // If-None-Match of each request
}

func newFeedServer(tb testing.TB) *feedServer {
	tb.Helper()
	fs := &feedServer{}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.mu.Lock()
		doc, etag, h := fs.doc, fs.etag, fs.handler
		fs.n++
		fs.inm = append(fs.inm, r.Header.Get("If-None-Match"))
		fs.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	tb.Cleanup(fs.Close)
	return fs
}

// serve makes doc the feed, under a new ETag.
func (fs *feedServer) serve(doc []byte) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.doc, fs.handler = doc, nil
	fs.etag = fmt.Sprintf(`"v%d"`, fs.n)
}

// hostile makes h answer every request.
func (fs *feedServer) hostile(h http.HandlerFunc) {
	fs.mu.Lock()
	fs.handler = h
	fs.mu.Unlock()
}

func (fs *feedServer) requests() (n int, inm []string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.n, append([]string(nil), fs.inm...)
}

func (fs *feedServer) url() string { return fs.URL + "/.well-known/revocations" }

// newTestFollower follows fs on clk, with edit applied to the Config.
func newTestFollower(tb testing.TB, fs *feedServer, clk *clock, edit func(*Config)) *Follower {
	tb.Helper()
	cfg := Config{URL: fs.url(), Issuer: testIssuer, Now: clk.Now}
	if edit != nil {
		edit(&cfg)
	}
	f, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// mustFetch fetches once and fails tb on an error.
func mustFetch(tb testing.TB, f *Follower) {
	tb.Helper()
	if err := f.fetch(context.Background()); err != nil {
		tb.Fatalf("fetch: %v", err)
	}
}

// claims is a token of sub in session sid at generation gen.
func claims(sub, sid string, gen int64) *token.Claims {
	return &token.Claims{Subject: sub, SessionID: sid, Generation: gen}
}

// manyEntries is a feed of n sessions and n/10 users, the size of a busy
// service's window.
func manyEntries(n int) (sids []string, users map[string]int64) {
	users = make(map[string]int64, n/10)
	for i := range n {
		sids = append(sids, fmt.Sprintf("0198f3a2-%04x-7000-8000-%012x", i%0xffff, i))
	}
	for i := range n / 10 {
		users[fmt.Sprintf("0198f3a2-0000-7000-8000-%012x", i)] = int64(i%5 + 1)
	}
	return sids, users
}

// slowBody writes the start of a document and then nothing, until the
// client gives up.
func slowBody(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"issuer":"` + testIssuer + `","sessions":[`))
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// hugeBody streams a valid-looking document larger than limit.
func hugeBody(limit int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"issuer":"` + testIssuer + `","generatedAt":"2030-01-02T03:04:05Z","users":[],"sessions":[`))
		entry := []byte(`{"sid":"` + strings.Repeat("x", 100) + `","revokedAt":"2030-01-02T03:04:05Z"},`)
		for written := 0; written <= limit; written += len(entry) {
			if _, err := w.Write(entry); err != nil {
				return
			}
		}
		w.Write([]byte(`{"sid":"last","revokedAt":"2030-01-02T03:04:05Z"}]}`))
	}
}
