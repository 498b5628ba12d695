package revocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// Defaults of a Config.
const (
	// DefaultPoll is the contract's LATCHKEY_REVOCATION_POLL default.
	DefaultPoll = 2 * time.Second
	// DefaultTimeout bounds one fetch, body included. It is longer than
	// the poll interval on purpose: a feed that is slow but answers should
	// still bring its revocations, late, rather than never.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxBackoff is the longest wait between fetches while the feed
	// fails, and so how long after an outage ends the list may take to
	// catch up.
	DefaultMaxBackoff = 30 * time.Second
	// DefaultMaxBodySize is far above any real feed (10,000 entries are
	// about 1 MiB) and low enough that a hostile one cannot make us
	// buffer without bound.
	DefaultMaxBodySize = 8 << 20
)

// jitterDivisor: each wait is shortened by up to 1/jitterDivisor of itself,
// never lengthened, so polls spread out and the poll interval stays a bound.
const jitterDivisor = 5

// Config configures a Follower.
type Config struct {
	// URL is the feed, such as https://auth.example.com/.well-known/revocations;
	// required, http or https.
	URL string
	// Issuer is the auth server's issuer; required. A feed whose "issuer"
	// differs is refused, so a misrouted URL cannot replace the list.
	Issuer string
	// Client fetches URL; default: a client without its own timeout, as
	// each fetch is bounded by Timeout.
	Client *http.Client
	// Poll is the interval between fetches (default 2 s). Each wait is
	// shortened at random by up to a fifth, never lengthened.
	Poll time.Duration
	// Timeout bounds each fetch, reading the body included (default 5 s).
	Timeout time.Duration
	// MaxBackoff bounds the wait between fetches while they fail, which
	// starts at Poll and doubles with each failure (default 30 s; never
	// less than Poll).
	MaxBackoff time.Duration
	// MaxBodySize is the largest feed accepted, in bytes (default 8 MiB).
	MaxBodySize int64
	// MaxStale, when set, is the age past which the list counts as too
	// old: Ready fails, and with FailClosed every token is refused. Zero
	// (the default) keeps the last list in force however old it gets.
	MaxStale time.Duration
	// FailClosed refuses every token, with token.ErrRevocationsUnavailable,
	// while the list is older than MaxStale. It requires MaxStale.
	FailClosed bool
	// Logger receives failed fetches (warn), recoveries (info) and failing
	// closed (error); nil discards.
	Logger *slog.Logger
	// Now is the clock, for tests (default time.Now).
	Now func() time.Time
}

// Follower follows a revocation feed and answers [token.Revoker] from the
// last list it accepted. Start it with [Follower.Run]; until its first
// successful fetch every token is answered with
// [token.ErrRevocationsUnavailable]. It is safe for concurrent use.
type Follower struct {
	cfg   Config
	state atomic.Pointer[state] // nil until a list is accepted
	// lastOK is when a fetch last succeeded (a list accepted, or a 304),
	// as nanoseconds since epoch plus one, 0 before the first. It is apart
	// from state so that a 304, the usual answer, changes no version and
	// costs cached verifications nothing; an offset from a time read by
	// cfg.Now keeps the monotonic clock, so a wall-clock step does not
	// age the list.
	lastOK  atomic.Int64
	epoch   time.Time
	running atomic.Bool

	// Replaced by tests, which drive their own clock.
	wait   func(ctx context.Context, d time.Duration) bool
	jitter func(d time.Duration) time.Duration

	mu       sync.Mutex
	failures int   // fetches failed in a row
	lastErr  error // how the last fetch failed; nil after a success
}

// state is what Revoked answers from. It is never changed once published.
type state struct {
	list    *list
	closed  bool   // older than MaxStale with FailClosed: refuse everything
	version uint64 // see Follower.Version
}

type list struct {
	sessions    map[string]struct{}
	users       map[string]int64 // sub → the lowest generation not refused
	etag        string
	generatedAt time.Time
}

var (
	_ token.Revoker          = (*Follower)(nil)
	_ token.VersionedRevoker = (*Follower)(nil)
)

// The answers of Revoked, made once: a flood of revoked tokens allocates
// nothing.
var (
	errSession = fmt.Errorf("%w: session ended", token.ErrRevoked)
	errUser    = fmt.Errorf("%w: the user's earlier tokens were revoked", token.ErrRevoked)
	errNoList  = fmt.Errorf("%w: the revocation feed has not been fetched yet", token.ErrRevocationsUnavailable)
	errClosed  = fmt.Errorf("%w: the revocation list is older than MaxStale", token.ErrRevocationsUnavailable)
)

// New checks cfg and fills its defaults. It fetches nothing; call Run.
func New(cfg Config) (*Follower, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("revocation: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("revocation: Config.Issuer is required")
	case cfg.Poll < 0 || cfg.Timeout < 0 || cfg.MaxBackoff < 0 || cfg.MaxStale < 0 || cfg.MaxBodySize < 0:
		return nil, errors.New("revocation: negative interval or size")
	case cfg.FailClosed && cfg.MaxStale == 0:
		return nil, errors.New("revocation: FailClosed needs MaxStale")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Poll == 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.Poll)
	if cfg.MaxBodySize == 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Follower{cfg: cfg, epoch: cfg.Now(), wait: sleep, jitter: jitter}, nil
}

// Revoked implements [token.Revoker]: it refuses c when c's session is
// listed, or c's user is listed with a generation above c's. It reads the
// list in memory and nothing else.
func (f *Follower) Revoked(c *token.Claims) error {
	s := f.state.Load()
	switch {
	case s == nil:
		return errNoList
	case s.closed:
		return errClosed
	}
	if c.SessionID != "" {
		if _, ok := s.list.sessions[c.SessionID]; ok {
			return errSession
		}
	}
	if gen, ok := s.list.users[c.Subject]; ok && c.Generation < gen {
		return errUser
	}
	return nil
}

// Version implements [token.VersionedRevoker]. It changes with every list
// accepted and when the Follower starts or stops failing closed; a 304
// leaves it alone. It is 0 until a list is accepted.
func (f *Follower) Version() uint64 {
	if s := f.state.Load(); s != nil {
		return s.version
	}
	return 0
}

// Run follows the feed until ctx is done: it fetches at once, then every
// poll interval, backing off while fetches fail. It returns nil when ctx
// is done, and an error only when the Follower is already running.
func (f *Follower) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("revocation: Run called while running")
	}
	defer f.running.Store(false)
	for {
		started := f.cfg.Now()
		err := f.fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		next := f.cfg.Poll
		if err != nil {
			next = f.failed(err)
		} else {
			f.succeeded()
		}
		// From the start of this fetch, so that a slow answer does not
		// push every later poll back.
		if !f.sleep(ctx, f.jitter(next)-f.cfg.Now().Sub(started)) {
			return nil
		}
	}
}

// sleep waits d, waking at the moment the list turns too old on the way
// when the Follower fails closed, so that it stops accepting on time. It
// reports false when ctx is done.
func (f *Follower) sleep(ctx context.Context, d time.Duration) bool {
	for {
		step := d
		if until, ok := f.untilClosed(); ok && until < step {
			step = until
		}
		if !f.wait(ctx, step) {
			return false
		}
		f.closeIfStale()
		if d -= step; d <= 0 {
			return true
		}
	}
}

// untilClosed is how long until the list turns too old and the Follower
// fails closed; ok is false when that cannot happen now.
func (f *Follower) untilClosed() (time.Duration, bool) {
	s := f.state.Load()
	if !f.cfg.FailClosed || s == nil || s.closed {
		return 0, false
	}
	return max(f.cfg.MaxStale-f.age(), 0), true
}

// closeIfStale starts failing closed when the list has turned too old.
func (f *Follower) closeIfStale() {
	s := f.state.Load()
	if !f.cfg.FailClosed || s == nil || s.closed || f.age() < f.cfg.MaxStale {
		return
	}
	f.publish(&state{list: s.list, closed: true})
	f.mu.Lock()
	err := f.lastErr
	f.mu.Unlock()
	f.cfg.Logger.Error("revocation feed: the list is older than MaxStale; refusing every token until a fetch succeeds",
		"age", f.age().Round(time.Millisecond), "max_stale", f.cfg.MaxStale, "err", err)
}

// publish makes s the state Revoked answers from, with the next version.
// Only Run's goroutine publishes, so the version cannot go back.
func (f *Follower) publish(s *state) {
	if old := f.state.Load(); old != nil {
		s.version = old.version + 1
	} else {
		s.version = 1
	}
	f.state.Store(s)
}

func (f *Follower) failed(err error) time.Duration {
	f.mu.Lock()
	f.failures++
	n := f.failures
	f.lastErr = err
	f.mu.Unlock()
	f.closeIfStale()
	wait := backoff(n, f.cfg.Poll, f.cfg.MaxBackoff)
	attrs := []any{"err", err, "failures", n, "retry_in", wait}
	if f.state.Load() != nil {
		attrs = append(attrs, "age", f.age().Round(time.Millisecond))
	}
	f.cfg.Logger.Warn("revocation feed: fetch failed; the last list stays in force", attrs...)
	return wait
}

func (f *Follower) succeeded() {
	f.mu.Lock()
	n := f.failures
	f.failures, f.lastErr = 0, nil
	f.mu.Unlock()
	if n > 0 {
		f.cfg.Logger.Info("revocation feed: fetched again", "failures", n)
	}
}

// backoff is the wait after n failed fetches in a row: poll, doubled for
// each failure after the first, never more than ceiling.
func backoff(n int, poll, ceiling time.Duration) time.Duration {
	d := poll
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// fetch asks for the feed once and, when the answer passes every check,
// makes it the list. Any failure leaves the list as it was.
func (f *Follower) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cfg.URL, nil)
	if err != nil {
		return fmt.Errorf("revocation feed: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	cur := f.state.Load()
	if cur != nil && cur.list.etag != "" {
		req.Header.Set("If-None-Match", cur.list.etag)
	}
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("revocation feed: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		drain(resp.Body)
		if cur == nil || cur.list.etag == "" {
			return errors.New("revocation feed: 304 to a request without If-None-Match")
		}
		f.confirm(cur)
		return nil
	default:
		drain(resp.Body)
		return fmt.Errorf("revocation feed: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBodySize+1))
	if err != nil {
		return fmt.Errorf("revocation feed: read: %w", err)
	}
	if int64(len(body)) > f.cfg.MaxBodySize {
		return fmt.Errorf("revocation feed: over %d bytes", f.cfg.MaxBodySize)
	}
	l, err := parse(body, f.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("revocation feed: %w", err)
	}
	l.etag = resp.Header.Get("ETag")
	if cur != nil && l.generatedAt.Before(cur.list.generatedAt) {
		// A replica that has not yet rebuilt its feed: ours is newer,
		// and taking its list would undo the latest revocations until
		// the next poll. The feed answered, so the list is as current
		// as the server knows.
		f.confirm(cur)
		return nil
	}
	f.publish(&state{list: l})
	f.touch()
	return nil
}

// confirm records that cur's list is still the feed's: its age starts
// again, and a Follower failing closed accepts tokens again.
func (f *Follower) confirm(cur *state) {
	f.touch()
	if cur.closed {
		f.publish(&state{list: cur.list})
	}
}

// drain reads what is left of a small body so the connection can be
// reused, which matters to a client that polls every two seconds.
func drain(r io.Reader) { io.Copy(io.Discard, io.LimitReader(r, 4<<10)) }

// feedJSON is the feed as the contract writes it. The lists are pointers so
// that a document missing one is told apart from an empty one.
type feedJSON struct {
	Issuer      string `json:"issuer"`
	GeneratedAt string `json:"generatedAt"`
	Sessions    *[]struct {
		SID string `json:"sid"`
	} `json:"sessions"`
	Users *[]struct {
		Sub string `json:"sub"`
		Gen *int64 `json:"gen"`
	} `json:"users"`
}

// parse reads a feed document, refusing anything that is not one, in whole:
// a list built from part of a document could let revoked tokens through.
func parse(body []byte, issuer string) (*list, error) {
	var doc feedJSON
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("not a feed document: %w", err)
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("issuer %q, want %q", doc.Issuer, issuer)
	}
	at, err := time.Parse(time.RFC3339, doc.GeneratedAt)
	if err != nil {
		return nil, fmt.Errorf("generatedAt: %w", err)
	}
	if at.IsZero() {
		// It would sort before every list and so never replace one.
		return nil, errors.New("generatedAt is the zero time")
	}
	if doc.Sessions == nil || doc.Users == nil {
		return nil, errors.New(`"sessions" or "users" missing`)
	}
	l := &list{
		sessions:    make(map[string]struct{}, len(*doc.Sessions)),
		users:       make(map[string]int64, len(*doc.Users)),
		generatedAt: at,
	}
	for i, s := range *doc.Sessions {
		if s.SID == "" {
			return nil, fmt.Errorf("sessions[%d]: no sid", i)
		}
		l.sessions[s.SID] = struct{}{}
	}
	for i, u := range *doc.Users {
		if u.Sub == "" || u.Gen == nil || *u.Gen < 0 {
			return nil, fmt.Errorf("users[%d]: no sub, or no gen that is a whole number ≥ 0", i)
		}
		// Generations only go up; of two entries the higher refuses more.
		l.users[u.Sub] = max(l.users[u.Sub], *u.Gen)
	}
	return l, nil
}

// touch records a successful fetch now.
func (f *Follower) touch() { f.lastOK.Store(int64(f.cfg.Now().Sub(f.epoch)) + 1) }

// age is how long ago a fetch last succeeded, or 0 before the first.
func (f *Follower) age() time.Duration {
	ok := f.lastOK.Load()
	if ok == 0 {
		return 0
	}
	return f.cfg.Now().Sub(f.epoch) - time.Duration(ok-1)
}

// Age is how long ago a fetch last succeeded (a list accepted or a 304),
// for readiness and metrics; ok is false before the first success.
func (f *Follower) Age() (age time.Duration, ok bool) {
	if f.state.Load() == nil {
		return 0, false
	}
	return f.age(), true
}

// Status is what a Follower reports about itself, for /readyz and metrics.
type Status struct {
	// Loaded is false until a list has been accepted.
	Loaded bool
	// Age is how long ago a fetch last succeeded.
	Age time.Duration
	// Stale reports an Age past MaxStale or, without one, past two poll
	// intervals plus the timeout: fetches have failed in a row, and a
	// revocation made now may be refused later than the contract's poll
	// interval plus one second.
	Stale bool
	// FailingClosed reports that every token is refused (FailClosed, and
	// the list older than MaxStale).
	FailingClosed bool
	// Sessions and Users count the entries of the list in force.
	Sessions, Users int
	// GeneratedAt is the feed's own time for the list in force.
	GeneratedAt time.Time
	// Failures counts the fetches failed in a row, and LastError is how
	// the last one failed; 0 and nil after a success.
	Failures  int
	LastError error
}

// Status reports the Follower's state.
func (f *Follower) Status() Status {
	f.mu.Lock()
	st := Status{Failures: f.failures, LastError: f.lastErr}
	f.mu.Unlock()
	s := f.state.Load()
	if s == nil {
		st.Stale = true
		return st
	}
	st.Loaded, st.Age, st.FailingClosed = true, f.age(), s.closed
	st.Stale = st.Age >= f.staleAfter()
	st.Sessions, st.Users, st.GeneratedAt = len(s.list.sessions), len(s.list.users), s.list.generatedAt
	return st
}

func (f *Follower) staleAfter() time.Duration {
	if f.cfg.MaxStale > 0 {
		return f.cfg.MaxStale
	}
	return 2*f.cfg.Poll + f.cfg.Timeout
}

// ErrNotReady is matched by the errors Ready returns.
var ErrNotReady = errors.New("revocation feed not ready")

// Ready reports whether the Follower has a list to answer from: it fails
// until the first successful fetch and, with MaxStale, while the list is
// older than that. It never fetches; Run does.
func (f *Follower) Ready(context.Context) error {
	f.mu.Lock()
	last := f.lastErr
	f.mu.Unlock()
	if f.state.Load() == nil {
		if last != nil {
			return fmt.Errorf("%w: no list fetched yet: %w", ErrNotReady, last)
		}
		return fmt.Errorf("%w: no list fetched yet", ErrNotReady)
	}
	if age := f.age(); f.cfg.MaxStale > 0 && age >= f.cfg.MaxStale {
		if last != nil {
			return fmt.Errorf("%w: the list is %v old, over MaxStale %v: %w", ErrNotReady, age.Round(time.Second), f.cfg.MaxStale, last)
		}
		return fmt.Errorf("%w: the list is %v old, over MaxStale %v", ErrNotReady, age.Round(time.Second), f.cfg.MaxStale)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter shortens d by a random part of up to 1/jitterDivisor.
func jitter(d time.Duration) time.Duration {
	if n := d / jitterDivisor; n > 0 {
		return d - rand.N(n)
	}
	return d
}
