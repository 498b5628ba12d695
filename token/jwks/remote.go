package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// Limits on remote documents. JWKS and discovery documents are a few KiB;
// the cap keeps a misbehaving server from making us buffer without bound.
const (
	maxDocumentSize = 1 << 20
	fetchTimeout    = 10 * time.Second
	// emptyRetry is the longest wait between fetch attempts while no keys
	// have ever loaded, so a verifier that starts before its auth server
	// becomes ready soon after the server does, without hammering it.
	emptyRetry = time.Second
	// firstRetry is the wait after a refresh fails while keys are held. It
	// doubles with each further failure, up to the refresh interval, so a
	// blip costs a second of staleness and an outage no more requests than
	// normal operation.
	firstRetry = time.Second
	// minServerMaxAge is the shortest refresh interval the server's
	// Cache-Control can ask for, so that "no-cache" or "max-age=0" means
	// "refresh often", not "fetch on every verification".
	minServerMaxAge = 5 * time.Second
)

// Defaults of a Config.
const (
	DefaultMinRefetch = 30 * time.Second
	DefaultMaxAge     = time.Minute
)

// Config configures a Remote.
type Config struct {
	// URL is the JWKS URL; required, http or https.
	URL string
	// Client fetches URL; default: a client with a 10 s timeout.
	Client *http.Client
	// MinRefetch is the least time between fetches caused by unknown kids
	// (default 30 s). It bounds what made-up kids cost the key server.
	MinRefetch time.Duration
	// MaxAge is the longest a key set is used before it is fetched again
	// (default 1 min): how long a key withdrawn from the JWKS may still
	// verify here. A shorter Cache-Control max-age from the server (less
	// its Age header) shortens it, to no less than 5 s; a longer one never
	// lengthens it.
	MaxAge time.Duration
	// Now is the clock, for tests (default time.Now).
	Now func() time.Time
}

// Remote is a [token.KeySource] that fetches a JWKS URL and caches the keys.
//
// Keys load on first use (or [Remote.Ready]). After that the set is fetched
// again MaxAge after each fetch, in the background: the first lookup after
// the set falls due starts the fetch, and every lookup meanwhile answers
// from the set in hand, so a verification never waits for the network while
// keys are held. The lookups that notice include the [token.Verifier]'s
// cache hits (through [Remote.Version]), so a steady stream of known,
// cached tokens keeps the set fresh as well; a Remote nobody asks fetches
// nothing after its timer has run once.
//
// An unknown kid triggers a refetch that the lookup waits for, at most once
// per MinRefetch, so a key that arrives between refreshes is picked up at
// once while a flood of made-up kids costs the key server one request per
// interval.
//
// Each successful fetch replaces the whole set: a key missing from the
// document stops verifying, and [Remote.Version] changes so that tokens a
// Verifier cached under it are refused too. A failed fetch (the server down,
// a status other than 200, a document that is not a usable JWK Set) changes
// nothing: the last good set stays in force, and the fetch is retried after
// 1 s, then 2 s, 4 s and so on up to the refresh interval. Concurrent
// callers share one fetch. It is safe for concurrent use.
type Remote struct {
	cfg Config
	set atomic.Pointer[keySet] // the last good document; read without locking on every lookup
	// due is set when the refresh timer fires and cleared by the lookup
	// that starts the refresh, so lookups pay an atomic load and the clock
	// is read only once per refresh.
	due   atomic.Bool
	after func(d time.Duration, f func()) (stop func() bool) // time.AfterFunc; tests drive their own clock

	mu          sync.Mutex
	inflight    *fetchCall  // the fetch under way, if any
	lastAttempt time.Time   // when the last fetch started
	lastErr     error       // how the last fetch ended
	failures    int         // fetches failed in a row since keys were last loaded
	stopTimer   func() bool // cancels the pending refresh timer; nil before the first set
}

type keySet struct {
	keys    map[string]token.Key
	maxAge  time.Duration // how long this set is used before a refresh
	version uint64        // see Remote.Version; 1 for the first set
}

type fetchCall struct {
	done chan struct{}
	err  error
}

var (
	_ token.KeySource          = (*Remote)(nil)
	_ token.VersionedKeySource = (*Remote)(nil)
)

// NewRemote checks cfg and fills its defaults. It fetches nothing, so a
// resource server can start before its auth server does.
func NewRemote(cfg Config) (*Remote, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("remote jwks: URL %q is not an absolute http(s) URL", cfg.URL)
	}
	if cfg.MinRefetch < 0 || cfg.MaxAge < 0 {
		return nil, errors.New("remote jwks: negative interval")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: fetchTimeout}
	}
	if cfg.MinRefetch == 0 {
		cfg.MinRefetch = DefaultMinRefetch
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Remote{cfg: cfg, after: afterFunc}, nil
}

func afterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Key returns the key with ID kid, fetching the JWKS when it has never
// loaded or when kid is unknown and the refetch interval allows. A known kid
// is answered at once, even when a refresh is due; the refresh starts in
// the background.
func (r *Remote) Key(ctx context.Context, kid string) (token.Key, error) {
	set := r.set.Load()
	if set == nil {
		if err := r.load(ctx, r.cfg.Now()); err != nil {
			return token.Key{}, err
		}
		return r.lookup(kid)
	}
	r.refreshIfDue()
	if k, ok := set.keys[kid]; ok {
		return k, nil
	}
	call := r.start(r.cfg.Now(), r.cfg.MinRefetch)
	if call == nil {
		return token.Key{}, fmt.Errorf("%w: kid %q", token.ErrUnknownKey, kid)
	}
	if err := wait(ctx, call); err != nil && !errors.Is(err, errFetch) {
		return token.Key{}, fmt.Errorf("%w: %w", token.ErrKeysUnavailable, err)
	}
	// A failed refetch leaves the old set in place, so this answers from
	// whatever is cached either way.
	return r.lookup(kid)
}

func (r *Remote) lookup(kid string) (token.Key, error) {
	if k, ok := r.set.Load().keys[kid]; ok {
		return k, nil
	}
	return token.Key{}, fmt.Errorf("%w: kid %q", token.ErrUnknownKey, kid)
}

// Version implements [token.VersionedKeySource]. It changes when a fetch
// removes a key or replaces one under the same kid, and stays the same when
// a fetch only adds keys (a new next key) or brings the same set again, so
// a Verifier re-checks its cached tokens only when one of them may have
// lost its key. It is 0 until keys have loaded. Like Key, it starts a
// background refresh when one is due, which is how a Verifier whose
// requests all hit its cache still keeps the set fresh.
func (r *Remote) Version() uint64 {
	r.refreshIfDue()
	if s := r.set.Load(); s != nil {
		return s.version
	}
	return 0
}

// refreshIfDue starts a background refresh if the timer says one is due.
// Only the caller that clears the flag goes on to the lock.
func (r *Remote) refreshIfDue() {
	if r.due.Load() && r.due.CompareAndSwap(true, false) {
		r.start(r.cfg.Now(), 0)
	}
}

// Ready reports whether keys are loaded, fetching them if they never were.
// It suits a readiness probe: it fails until the first successful fetch and
// never again afterwards, since cached keys outlive a key server outage.
func (r *Remote) Ready(ctx context.Context) error {
	if r.set.Load() != nil {
		return nil
	}
	return r.load(ctx, r.cfg.Now())
}

// load fetches the first key set, or reports why there is none.
func (r *Remote) load(ctx context.Context, now time.Time) error {
	call := r.start(now, min(r.cfg.MinRefetch, emptyRetry))
	if call != nil {
		if err := wait(ctx, call); err != nil {
			return fmt.Errorf("%w: %w", token.ErrKeysUnavailable, err)
		}
		return nil
	}
	if r.set.Load() != nil { // loaded by a fetch that finished meanwhile
		return nil
	}
	r.mu.Lock()
	err := r.lastErr
	r.mu.Unlock()
	return fmt.Errorf("%w: %w", token.ErrKeysUnavailable, err)
}

// start returns the fetch under way, or starts one if none has started
// within interval (0: whenever none is under way); otherwise it returns
// nil. The fetch runs on its own context, so one impatient caller cannot
// fail it for the others, and its goroutine ends within fetchTimeout.
func (r *Remote) start(now time.Time, interval time.Duration) *fetchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	if interval > 0 && !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < interval {
		return nil
	}
	call := &fetchCall{done: make(chan struct{})}
	r.inflight, r.lastAttempt = call, now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		set, err := r.fetch(ctx)
		r.mu.Lock()
		r.finish(set, err)
		r.lastErr, r.inflight = err, nil
		r.mu.Unlock()
		call.err = err
		close(call.done)
	}()
	return call
}

// finish records a fetch's outcome and sets the timer for the next one. It
// runs with r.mu held, and is the only writer of r.set.
func (r *Remote) finish(set *keySet, err error) {
	old := r.set.Load()
	if err != nil {
		if old == nil {
			// Nothing to refresh: lookups retry the first load themselves,
			// at most once per emptyRetry.
			return
		}
		r.failures++
		r.schedule(backoff(r.failures, old.maxAge))
		return
	}
	r.failures = 0
	set.version = 1
	if old != nil {
		set.version = old.version
		if !keepsEvery(set.keys, old.keys) {
			set.version++
		}
	}
	r.set.Store(set)
	r.schedule(set.maxAge)
}

// schedule makes a refresh due in d. Every completed fetch calls it, so
// whichever fetch ran last (refresh or unknown kid) sets the next refresh.
// A timer that fires while being replaced costs one early refresh at most.
func (r *Remote) schedule(d time.Duration) {
	if r.stopTimer != nil {
		r.stopTimer()
	}
	r.due.Store(false)
	r.stopTimer = r.after(d, func() { r.due.Store(true) })
}

// backoff is the wait before retrying after n failed fetches in a row:
// firstRetry doubled per further failure, never more than ceiling.
func backoff(n int, ceiling time.Duration) time.Duration {
	d := firstRetry
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// keepsEvery reports whether next holds every key of prev unchanged, so
// nothing verified with prev can have lost its key.
func keepsEvery(next, prev map[string]token.Key) bool {
	for kid, k := range prev {
		if n, ok := next[kid]; !ok || !n.Equal(k) {
			return false
		}
	}
	return true
}

func wait(ctx context.Context, call *fetchCall) error {
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errFetch marks errors of the fetch itself, as opposed to the caller giving
// up waiting.
var errFetch = errors.New("fetch jwks")

func (r *Remote) fetch(ctx context.Context) (*keySet, error) {
	body, header, err := getDocument(ctx, r.cfg.Client, r.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	keys, err := token.ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	set := &keySet{keys: make(map[string]token.Key, len(keys)), maxAge: r.cfg.MaxAge}
	if fresh, ok := freshness(header); ok {
		set.maxAge = min(r.cfg.MaxAge, max(fresh, minServerMaxAge))
	}
	for _, k := range keys {
		set.keys[k.ID] = k // ParseJWKS refuses a repeated kid
	}
	return set, nil
}

// freshness is how much longer the response says it stays fresh
// (RFC 9111 §4.2): the smallest Cache-Control max-age less the Age header,
// and 0 for no-cache, no-store or a max-age that is not a number, which
// RFC 9111 advises reading as stale. ok is false when Cache-Control says
// nothing of freshness.
func freshness(h http.Header) (fresh time.Duration, ok bool) {
	// RFC 9111 §1.2.2 reads any larger delta-seconds as 2^31; it also
	// keeps the arithmetic below far from overflow.
	const maxSeconds = 1 << 31
	seconds := int64(maxSeconds)
	for _, v := range h.Values("Cache-Control") {
		for directive := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				seconds, ok = 0, true
			case "max-age":
				n := max(deltaSeconds(strings.Trim(arg, `"`), maxSeconds), 0) // unreadable: stale
				seconds, ok = min(seconds, n), true
			}
		}
	}
	if !ok {
		return 0, false
	}
	if age := strings.TrimSpace(h.Get("Age")); age != "" {
		if n := deltaSeconds(age, maxSeconds); n >= 0 {
			seconds -= min(n, seconds)
		}
	}
	return time.Duration(seconds) * time.Second, true
}

// deltaSeconds parses an RFC 9111 delta-seconds value, reading values over
// ceiling as ceiling; it returns -1 for anything that is not a number of
// seconds, a sign included.
func deltaSeconds(s string, ceiling int64) int64 {
	if s == "" {
		return -1
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return -1
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > ceiling { // only a range error is left
		return ceiling
	}
	return n
}

func getDocument(ctx context.Context, client *http.Client, u string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("get %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("get %s: %w", u, err)
	}
	if len(body) > maxDocumentSize {
		return nil, nil, fmt.Errorf("get %s: document over %d bytes", u, maxDocumentSize)
	}
	return body, resp.Header, nil
}
