package jwks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
)

// Config configures a Remote.
type Config struct {
	URL        string           // the JWKS URL; required, http or https
	Client     *http.Client     // default: a client with a 10 s timeout
	MinRefetch time.Duration    // least time between fetches caused by unknown kids; default 30 s
	MaxAge     time.Duration    // keys older than this are refreshed in the background; default 1 h
	Now        func() time.Time // default time.Now
}

// Remote is a [token.KeySource] that fetches a JWKS URL and caches the keys.
//
// Keys load on first use (or [Remote.Ready]). An unknown kid triggers a
// refetch, at most once per MinRefetch, so a new signing key is picked up
// quickly while a flood of made-up kids costs the key server one request per
// interval. Keys older than MaxAge are refreshed in the background while the
// cached ones keep answering, and if the server is down the cached keys keep
// working: withdrawing a key therefore takes effect at the next successful
// fetch. Concurrent callers share one fetch. It is safe for concurrent use.
type Remote struct {
	cfg Config
	set atomic.Pointer[keySet] // the last good document; read without locking on every lookup

	mu          sync.Mutex
	inflight    *fetchCall // the fetch under way, if any
	lastAttempt time.Time  // when the last fetch started
	lastErr     error      // how the last fetch ended
}

type keySet struct {
	keys    map[string]token.Key
	fetched time.Time
}

type fetchCall struct {
	done chan struct{}
	err  error
}

var _ token.KeySource = (*Remote)(nil)

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
		cfg.MinRefetch = 30 * time.Second
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Remote{cfg: cfg}, nil
}

// Key returns the key with ID kid, fetching the JWKS when it has never
// loaded or when kid is unknown and the refetch interval allows.
func (r *Remote) Key(ctx context.Context, kid string) (token.Key, error) {
	now := r.cfg.Now()
	set := r.set.Load()
	if set != nil {
		if k, ok := set.keys[kid]; ok {
			if now.Sub(set.fetched) >= r.cfg.MaxAge {
				r.start(now, r.cfg.MinRefetch) // in the background: the cached key answers now
			}
			return k, nil
		}
		call := r.start(now, r.cfg.MinRefetch)
		if call == nil {
			return token.Key{}, fmt.Errorf("%w: kid %q", token.ErrUnknownKey, kid)
		}
		if err := wait(ctx, call); err != nil && !errors.Is(err, errFetch) {
			return token.Key{}, fmt.Errorf("%w: %w", token.ErrKeysUnavailable, err)
		}
		// A failed refetch leaves the old set in place, so this answers
		// from whatever is cached either way.
		if k, ok := r.set.Load().keys[kid]; ok {
			return k, nil
		}
		return token.Key{}, fmt.Errorf("%w: kid %q", token.ErrUnknownKey, kid)
	}

	if err := r.load(ctx, now); err != nil {
		return token.Key{}, err
	}
	if k, ok := r.set.Load().keys[kid]; ok {
		return k, nil
	}
	return token.Key{}, fmt.Errorf("%w: kid %q", token.ErrUnknownKey, kid)
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

// start returns the fetch under way, or starts one if the last started at
// least interval ago; otherwise it returns nil. The fetch runs on its own
// context, so one impatient caller cannot fail it for the others, and its
// goroutine ends within fetchTimeout.
func (r *Remote) start(now time.Time, interval time.Duration) *fetchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inflight != nil {
		return r.inflight
	}
	if !r.lastAttempt.IsZero() && now.Sub(r.lastAttempt) < interval {
		return nil
	}
	call := &fetchCall{done: make(chan struct{})}
	r.inflight, r.lastAttempt = call, now
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		set, err := r.fetch(ctx)
		r.mu.Lock()
		if err == nil {
			set.fetched = r.cfg.Now()
			r.set.Store(set)
		}
		r.lastErr, r.inflight = err, nil
		r.mu.Unlock()
		call.err = err
		close(call.done)
	}()
	return call
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
	body, err := getDocument(ctx, r.cfg.Client, r.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	keys, err := token.ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errFetch, err)
	}
	set := &keySet{keys: make(map[string]token.Key, len(keys))}
	for _, k := range keys {
		set.keys[k.ID] = k // ParseJWKS refuses a repeated kid
	}
	return set, nil
}

func getDocument(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	if len(body) > maxDocumentSize {
		return nil, fmt.Errorf("get %s: document over %d bytes", u, maxDocumentSize)
	}
	return body, nil
}
