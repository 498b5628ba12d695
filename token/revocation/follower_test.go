package revocation

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

func TestNewChecksConfig(t *testing.T) {
	good := Config{URL: "https://auth.test/.well-known/revocations", Issuer: testIssuer}
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"relative URL", func(c *Config) { c.URL = "/.well-known/revocations" }},
		{"file URL", func(c *Config) { c.URL = "file:///etc/passwd" }},
		{"no issuer", func(c *Config) { c.Issuer = "" }},
		{"negative poll", func(c *Config) { c.Poll = -time.Second }},
		{"negative MaxStale", func(c *Config) { c.MaxStale = -time.Second }},
		{"negative body size", func(c *Config) { c.MaxBodySize = -1 }},
		{"FailClosed without MaxStale: it would never close", func(c *Config) { c.FailClosed = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			if _, err := New(cfg); err == nil {
				t.Errorf("New accepted %+v", cfg)
			}
		})
	}
	f, err := New(Config{URL: good.URL, Issuer: testIssuer, Poll: time.Minute, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.Timeout != DefaultTimeout || f.cfg.MaxBodySize != DefaultMaxBodySize || f.cfg.MaxBackoff != time.Minute {
		t.Errorf("defaults: %+v; want the default timeout and body size, and MaxBackoff raised to Poll", f.cfg)
	}
}

// TestBeforeTheFirstFetch: with no list, nothing can be judged, and saying
// so must not send the client to sign in again.
func TestBeforeTheFirstFetch(t *testing.T) {
	f := newTestFollower(t, newFeedServer(t), newClock(), nil)
	err := f.Revoked(claims("u", "s", 0))
	if !errors.Is(err, token.ErrRevocationsUnavailable) || errors.Is(err, token.ErrInvalid) {
		t.Errorf("Revoked before any fetch = %v; want ErrRevocationsUnavailable, not ErrInvalid", err)
	}
	if err := f.Ready(context.Background()); !errors.Is(err, ErrNotReady) {
		t.Errorf("Ready before any fetch = %v", err)
	}
	if _, ok := f.Age(); ok {
		t.Error("Age reports a list before any fetch")
	}
	if st := f.Status(); st.Loaded || !st.Stale || f.Version() != 0 {
		t.Errorf("Status before any fetch = %+v, version %d", st, f.Version())
	}
}

// TestRefusals is the feed's rule: a listed sid is refused; a listed sub
// refuses its tokens of a generation below the entry's, and only those.
func TestRefusals(t *testing.T) {
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, []string{"s-revoked"}, map[string]int64{"u-demoted": 3}))
	f := newTestFollower(t, fs, newClock(), nil)
	mustFetch(t, f)
	for _, tc := range []struct {
		name   string
		c      *token.Claims
		refuse bool
	}{
		{"a listed session", claims("u-any", "s-revoked", 0), true},
		{"a listed session, whatever the generation", claims("u-any", "s-revoked", 99), true},
		{"a token of a generation before the user's entry", claims("u-demoted", "s-live", 2), true},
		{"a token without gen counts as generation 0", claims("u-demoted", "s-live", 0), true},
		{"a token issued at the entry's generation, after the event", claims("u-demoted", "s-live", 3), false},
		{"a later generation", claims("u-demoted", "s-live", 4), false},
		{"another user", claims("u-other", "s-live", 0), false},
		{"a token without sid is judged by its user alone", claims("u-other", "", 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Revoked(tc.c)
			switch {
			case tc.refuse && !(errors.Is(err, token.ErrRevoked) && errors.Is(err, token.ErrInvalid)):
				t.Errorf("Revoked = %v, want ErrRevoked", err)
			case !tc.refuse && err != nil:
				t.Errorf("Revoked = %v, want nil", err)
			}
		})
	}
	if st := f.Status(); !st.Loaded || st.Sessions != 1 || st.Users != 1 || !st.GeneratedAt.Equal(fixedNow) {
		t.Errorf("Status = %+v", st)
	}
}

// TestConditionalFetch: after a list, requests carry its ETag; a 304 keeps
// the list and its version and resets its age; a new document replaces the
// list whole, so an entry that left the feed leaves the list.
func TestConditionalFetch(t *testing.T) {
	fs := newFeedServer(t)
	clk := newClock()
	fs.serve(newDoc(fixedNow, []string{"s-old"}, nil))
	f := newTestFollower(t, fs, clk, nil)
	mustFetch(t, f)
	v := f.Version()

	clk.Advance(5 * time.Second)
	mustFetch(t, f)
	if age, _ := f.Age(); age != 0 || f.Version() != v {
		t.Errorf("after a 304: age %v, version %d→%d; want 0 and no new version", age, v, f.Version())
	}
	if _, inm := fs.requests(); inm[0] != "" || inm[1] != fs.etag {
		t.Errorf("If-None-Match of the two requests: %q; want none, then %q", inm, fs.etag)
	}

	fs.serve(newDoc(fixedNow.Add(time.Minute), []string{"s-new"}, nil))
	mustFetch(t, f)
	if f.Version() == v {
		t.Error("a new list kept the version")
	}
	if err := f.Revoked(claims("u", "s-old", 0)); err != nil {
		t.Errorf("an entry that left the feed still refuses: %v", err)
	}
	if err := f.Revoked(claims("u", "s-new", 0)); !errors.Is(err, token.ErrRevoked) {
		t.Errorf("the new entry: %v", err)
	}
}

// TestHostileFeeds: whatever the feed answers, a fetch either passes every
// check or changes nothing: the list in force keeps refusing what it did.
func TestHostileFeeds(t *testing.T) {
	const limit = 64 << 10
	doc := func(s string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(s)) }
	}
	at := `"generatedAt":"2030-01-02T03:04:06Z"`
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		// ok: the answer is a success that cannot change the list.
		ok bool
	}{
		{name: "server error", h: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }},
		{name: "not found", h: http.NotFound},
		{name: "a redirect loop", h: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.String(), http.StatusFound) }},
		{name: "empty body", h: doc("")},
		{name: "garbage", h: doc("\x00\xff garbage")},
		{name: "an HTML page with status 200", h: doc("<html><body>Sign in to the Wi-Fi</body></html>")},
		{name: "a JSON array", h: doc("[]")},
		{name: "null", h: doc("null")},
		{name: "truncated", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[{"sid":"x"`)},
		{name: "trailing data", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[],"users":[]} {}`)},
		{name: "wrong issuer", h: doc(`{"issuer":"https://evil.test",` + at + `,"sessions":[],"users":[]}`)},
		{name: "no issuer", h: doc(`{` + at + `,"sessions":[],"users":[]}`)},
		{name: "no generatedAt", h: doc(`{"issuer":"` + testIssuer + `","sessions":[],"users":[]}`)},
		{name: "no sessions", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"users":[]}`)},
		{name: "null users", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[],"users":null}`)},
		{name: "a session without sid", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[{"revokedAt":"x"}],"users":[]}`)},
		{name: "a user without gen", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[],"users":[{"sub":"u"}]}`)},
		{name: "a negative gen", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[],"users":[{"sub":"u","gen":-1}]}`)},
		{name: "a fractional gen", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[],"users":[{"sub":"u","gen":1.5}]}`)},
		{name: "a gen beyond int64", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[],"users":[{"sub":"u","gen":99999999999999999999}]}`)},
		{name: "a sid of the wrong type", h: doc(`{"issuer":"` + testIssuer + `",` + at + `,"sessions":[{"sid":7}],"users":[]}`)},
		{name: "huge", h: hugeBody(limit)},
		{name: "slow: headers, then a body that never ends", h: slowBody},
		{name: "slow: no answer at all", h: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{name: "the connection dropped", h: func(w http.ResponseWriter, r *http.Request) {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		}},
		// A 304 says "what you have is current", whatever else it says.
		{name: "a 304 under another ETag", ok: true, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `"something else"`)
			w.WriteHeader(http.StatusNotModified)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFeedServer(t)
			fs.serve(newDoc(fixedNow, []string{"s-revoked"}, map[string]int64{"u": 2}))
			// The timeout is what a slow feed costs; no assertion on time.
			f := newTestFollower(t, fs, newClock(), func(c *Config) { c.MaxBodySize, c.Timeout = limit, 200*time.Millisecond })
			mustFetch(t, f)
			v := f.Version()
			fs.hostile(tc.h)
			if err := f.fetch(context.Background()); (err == nil) != tc.ok {
				t.Errorf("fetch = %v", err)
			}
			if f.Version() != v {
				t.Errorf("the list changed: version %d→%d", v, f.Version())
			}
			if err := f.Revoked(claims("u", "s-revoked", 5)); !errors.Is(err, token.ErrRevoked) {
				t.Errorf("the listed session after the fetch: %v, want still refused", err)
			}
			if err := f.Revoked(claims("u", "s-live", 1)); !errors.Is(err, token.ErrRevoked) {
				t.Errorf("the listed user after the fetch: %v, want still refused", err)
			}
		})
	}
}

// TestOlderDocumentIgnored: a replica that has not rebuilt its feed yet
// must not undo a revocation another replica already served.
func TestOlderDocumentIgnored(t *testing.T) {
	fs := newFeedServer(t)
	clk := newClock()
	fs.serve(newDoc(fixedNow.Add(2*time.Second), []string{"s-revoked"}, nil))
	f := newTestFollower(t, fs, clk, nil)
	mustFetch(t, f)
	v := f.Version()
	clk.Advance(time.Second)
	fs.serve(newDoc(fixedNow, nil, nil))
	mustFetch(t, f)
	if err := f.Revoked(claims("u", "s-revoked", 0)); !errors.Is(err, token.ErrRevoked) || f.Version() != v {
		t.Errorf("after an older document: %v, version %d→%d; want the newer list kept", err, v, f.Version())
	}
	if age, _ := f.Age(); age != 0 {
		t.Errorf("age %v: the feed answered, so the list is as current as it knows", age)
	}
}

// TestLargeFeed: 10,000 entries, far more than a window normally holds,
// load within the default size cap.
func TestLargeFeed(t *testing.T) {
	fs := newFeedServer(t)
	sids, users := manyEntries(10000)
	body := newDoc(fixedNow, sids, users)
	fs.serve(body)
	f := newTestFollower(t, fs, newClock(), nil)
	mustFetch(t, f)
	if st := f.Status(); st.Sessions != 10000 || st.Users != 1000 {
		t.Errorf("Status = %+v", st)
	}
	t.Logf("10,000 sessions and 1,000 users: %d bytes", len(body))
}

// runner runs a Follower whose waits move a fake clock instead of
// sleeping, and records them. after, when set, runs after each wait and
// may change the feed; the run stops after stopAfter waits.
type runner struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *runner) run(t *testing.T, f *Follower, clk *clock, stopAfter int, after func(i int)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.jitter = func(d time.Duration) time.Duration { return d }
	f.wait = func(ctx context.Context, d time.Duration) bool {
		r.mu.Lock()
		r.waits = append(r.waits, d)
		i := len(r.waits)
		r.mu.Unlock()
		clk.Advance(d)
		if after != nil {
			after(i)
		}
		if i >= stopAfter {
			cancel()
		}
		return ctx.Err() == nil
	}
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop with its context")
	}
}

// TestBackoff: failures wait Poll, then twice as long each time up to
// MaxBackoff; one success brings the poll interval back.
func TestBackoff(t *testing.T) {
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, []string{"s"}, nil))
	clk := newClock()
	f := newTestFollower(t, fs, clk, func(c *Config) { c.Poll, c.MaxBackoff = 2*time.Second, 20*time.Second })
	down := func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) }
	var r runner
	r.run(t, f, clk, 9, func(i int) {
		switch i {
		case 1:
			fs.hostile(down)
		case 7:
			fs.serve(newDoc(fixedNow, []string{"s"}, nil))
		}
	})
	want := []time.Duration{2, 2, 4, 8, 16, 20, 20, 2, 2}
	for i := range want {
		want[i] *= time.Second
	}
	if len(r.waits) != len(want) {
		t.Fatalf("waits %v, want %v", r.waits, want)
	}
	for i := range want {
		// The fetch itself takes real time, which the wait subtracts.
		if r.waits[i] > want[i] || r.waits[i] < want[i]-time.Second {
			t.Errorf("waits %v, want about %v", r.waits, want)
			break
		}
	}
	if st := f.Status(); st.Failures != 0 || st.LastError != nil {
		t.Errorf("after recovering: %+v", st)
	}
}

// TestOutageKeepsList: through an outage of any length the list keeps
// refusing what it listed, Status shows its age and that it is stale, and
// without MaxStale the Follower stays ready. The first fetch after the
// outage brings what was revoked meanwhile.
func TestOutageKeepsList(t *testing.T) {
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, []string{"s-before"}, nil))
	clk := newClock()
	f := newTestFollower(t, fs, clk, nil)
	var r runner
	var during Status
	r.run(t, f, clk, 40, func(i int) {
		switch i {
		case 1:
			fs.hostile(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 502) })
		case 30:
			during = f.Status()
			// Revoked while this verifier could not see the feed.
			fs.serve(newDoc(fixedNow.Add(time.Hour), []string{"s-before", "s-during"}, nil))
		}
	})
	if !during.Stale || during.Age < 10*time.Minute || during.Failures < 10 || during.LastError == nil {
		t.Errorf("Status during the outage = %+v; want stale, old, failing", during)
	}
	if err := f.Ready(context.Background()); err != nil {
		t.Errorf("Ready without MaxStale after an outage: %v", err)
	}
	for _, sid := range []string{"s-before", "s-during"} {
		if err := f.Revoked(claims("u", sid, 0)); !errors.Is(err, token.ErrRevoked) {
			t.Errorf("%s after the outage: %v", sid, err)
		}
	}
	if st := f.Status(); st.Stale || st.Failures != 0 {
		t.Errorf("Status after recovery = %+v", st)
	}
}

// TestMaxStale: past MaxStale the Follower is not ready; with FailClosed it
// also refuses every token, from the moment the list turns too old, under a
// new version so cached verifications see it; the next success reopens.
func TestMaxStale(t *testing.T) {
	for _, failClosed := range []bool{false, true} {
		t.Run(map[bool]string{false: "not ready only", true: "fail closed"}[failClosed], func(t *testing.T) {
			fs := newFeedServer(t)
			fs.serve(newDoc(fixedNow, []string{"s-revoked"}, nil))
			clk := newClock()
			f := newTestFollower(t, fs, clk, func(c *Config) {
				c.Poll, c.MaxBackoff, c.MaxStale, c.FailClosed = 2*time.Second, 30*time.Second, time.Minute, failClosed
			})
			type snapshot struct {
				ready, live error
				version     uint64
			}
			snap := func() snapshot {
				return snapshot{f.Ready(context.Background()), f.Revoked(claims("u", "s-live", 0)), f.Version()}
			}
			var r runner
			var atStale, justBefore snapshot
			up, seenStale := true, false
			r.run(t, f, clk, 30, func(i int) {
				age, _ := f.Age()
				switch {
				case i == 1:
					fs.hostile(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 503) })
					up = false
				case !up && age < time.Minute:
					justBefore = snap()
				case !up && !seenStale:
					// The wait that reaches MaxStale returns before the
					// Follower acts on it: look at the next one.
					seenStale = true
				case !up:
					atStale = snap()
					fs.serve(newDoc(fixedNow, []string{"s-revoked"}, nil))
					fs.mu.Lock()
					fs.etag = `"v0"` // the list did not change: the next answer is a 304
					fs.mu.Unlock()
					up = true
				}
			})
			if justBefore.ready != nil || justBefore.live != nil {
				t.Errorf("before MaxStale: ready %v, live token %v; want both nil", justBefore.ready, justBefore.live)
			}
			if !errors.Is(atStale.ready, ErrNotReady) {
				t.Errorf("past MaxStale: Ready = %v", atStale.ready)
			}
			closed := errors.Is(atStale.live, token.ErrRevocationsUnavailable) && !errors.Is(atStale.live, token.ErrInvalid)
			if closed != failClosed {
				t.Errorf("past MaxStale: a live token = %v (fail closed %v)", atStale.live, failClosed)
			}
			if failClosed && atStale.version == justBefore.version {
				t.Error("failing closed kept the version: cached tokens would still pass")
			}
			if err := f.Revoked(claims("u", "s-live", 0)); err != nil {
				t.Errorf("after the feed answered again: %v", err)
			}
			if err := f.Ready(context.Background()); err != nil {
				t.Errorf("Ready after the feed answered again: %v", err)
			}
		})
	}
}

// TestRunSchedule: the first fetch is immediate, each wait is at most the
// poll interval less the fetch's own time, and jitter only shortens.
func TestRunSchedule(t *testing.T) {
	for range 1000 {
		if d := jitter(2 * time.Second); d > 2*time.Second || d < 1600*time.Millisecond {
			t.Fatalf("jitter(2s) = %v, want within [1.6s, 2s]", d)
		}
	}
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, nil, nil))
	clk := newClock()
	f := newTestFollower(t, fs, clk, nil)
	var r runner
	r.run(t, f, clk, 3, nil)
	if n, _ := fs.requests(); n != 3 {
		t.Errorf("%d requests in three polls, want 3 (the first at once)", n)
	}
}

// TestRunTwice: one Follower, one loop.
func TestRunTwice(t *testing.T) {
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, nil, nil))
	f := newTestFollower(t, fs, newClock(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f.wait = func(ctx context.Context, d time.Duration) bool { <-ctx.Done(); return false }
	go func() { f.Run(ctx); close(done) }()
	for f.Version() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := f.Run(ctx); err == nil {
		t.Error("a second Run while the first runs returned nil")
	}
	cancel()
	<-done
}

// TestRunStopsDuringFetch: cancelling the context ends a fetch in flight.
func TestRunStopsDuringFetch(t *testing.T) {
	fs := newFeedServer(t)
	started := make(chan struct{})
	var once sync.Once
	fs.hostile(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		<-r.Context().Done()
	})
	f := newTestFollower(t, fs, newClock(), func(c *Config) { c.Timeout = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop while a fetch was in flight")
	}
}

// TestRevokedWhilePublishing reads the list from many goroutines while
// Run replaces it. Run with -race.
func TestRevokedWhilePublishing(t *testing.T) {
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, []string{"s0"}, nil))
	clk := newClock()
	f := newTestFollower(t, fs, clk, nil)
	mustFetch(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := f.Revoked(claims("u", "s0", 0)); !errors.Is(err, token.ErrRevoked) {
					t.Errorf("s0, listed in every document: %v", err)
					return
				}
				f.Status()
			}
		})
	}
	for i := range 50 {
		fs.serve(newDoc(fixedNow.Add(time.Duration(i)*time.Second), []string{"s0", strings.Repeat("x", i+1)}, nil))
		mustFetch(t, f)
	}
	cancel()
	wg.Wait()
}
