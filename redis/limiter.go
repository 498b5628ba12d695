package redis

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey-dev/latchkey"
)

// Defaults of Config.
const (
	DefaultPrefix = "latchkey:"
	// DefaultTimeout is short because a login makes up to three limiter
	// calls before it hashes a password: a hung Redis then adds at most
	// 0.6 s to the one login that finds it down, and nothing to later ones.
	DefaultTimeout = 200 * time.Millisecond
	// DefaultRetryInterval bounds how long a replica keeps counting alone
	// after Redis is back.
	DefaultRetryInterval = 5 * time.Second
)

// Config configures a Limiter. Exactly one of URL and Client is required.
type Config struct {
	// URL is a redis://, rediss:// or unix:// URL as go-redis's ParseURL
	// reads it (user, password, database, options). The Limiter opens its
	// own client and closes it in Close.
	URL string

	// Client is an existing client (Sentinel, Cluster, one shared with
	// other uses), which the caller keeps and closes. Set its
	// ContextTimeoutEnabled: without it, a hung server holds each call for
	// the client's ReadTimeout (seconds) instead of Timeout.
	Client goredis.UniversalClient

	// Prefix starts every key, so that several deployments can share one
	// Redis without counting together. Defaults to DefaultPrefix.
	Prefix string

	// Timeout bounds each call to Redis; a call that takes longer is
	// served by the fallback. Defaults to DefaultTimeout.
	Timeout time.Duration

	// RetryInterval is how often, while Redis is unavailable, a background
	// probe asks whether it is back. Defaults to DefaultRetryInterval.
	RetryInterval time.Duration

	// Logger gets one warning when Redis becomes unavailable and one info
	// line when it is used again. Defaults to discarding.
	Logger *slog.Logger

	// Now, when set, is the clock the rates are counted on, in place of
	// Redis's (see the package doc). For tests: replicas sharing a Prefix
	// must share a clock, which only Redis's guarantees.
	Now func() time.Time
}

// Limiter is a latchkey.Limiter shared through Redis, with an in-process
// fallback for when Redis is unavailable. It is safe for concurrent use.
type Limiter struct {
	client   goredis.UniversalClient
	owned    bool // Close closes client
	prefix   string
	timeout  time.Duration
	retry    time.Duration
	log      *slog.Logger
	now      func() time.Time // nil: Redis's clock
	fallback *latchkey.MemoryLimiter

	// state counts the switches between Redis and the fallback: even while
	// Redis is in use, odd while the fallback is. A call remembers the
	// state it began in and may only move that one on, so that of many
	// calls failing together one logs, and a call that fails late, after
	// Redis has come back, cannot turn it off again.
	state atomic.Uint64

	mu        sync.Mutex // guards the fields below and switches of state
	nextProbe time.Time
	probing   bool
	closed    bool
	probes    sync.WaitGroup
}

var _ latchkey.Limiter = (*Limiter)(nil)

//go:embed gcra.lua
var gcraSource string

// gcra is the one script of every Take, Refund and probe; Run sends it by
// its SHA-1 and sends its text only when the server does not know it (a
// restart, SCRIPT FLUSH).
var gcra = goredis.NewScript(gcraSource)

// New validates cfg, fills its defaults and returns a Limiter. It does not
// contact Redis: use Ping for that.
func New(cfg Config) (*Limiter, error) {
	switch {
	case cfg.URL == "" && cfg.Client == nil:
		return nil, errors.New("redis: Config.URL or Config.Client is required")
	case cfg.URL != "" && cfg.Client != nil:
		return nil, errors.New("redis: Config.URL and Config.Client are exclusive")
	case cfg.Timeout < 0, cfg.RetryInterval < 0:
		return nil, errors.New("redis: negative duration in Config")
	}
	l := &Limiter{
		client:   cfg.Client,
		prefix:   cfg.Prefix,
		timeout:  cfg.Timeout,
		retry:    cfg.RetryInterval,
		log:      cfg.Logger,
		now:      cfg.Now,
		fallback: latchkey.NewMemoryLimiter(),
	}
	if cfg.URL != "" {
		opts, err := goredis.ParseURL(cfg.URL)
		if err != nil {
			// url.Error quotes the whole URL, password included.
			if uerr, ok := errors.AsType[*url.Error](err); ok {
				err = uerr.Err
			}
			return nil, fmt.Errorf("redis: parse URL: %w", err)
		}
		opts.ContextTimeoutEnabled = true
		if opts.DialerRetries == 0 {
			// go-redis redials a refused connection five times with
			// backoff, which spends the whole Timeout and then reports
			// only the deadline; one attempt fails at once with its cause.
			opts.DialerRetries = 1
		}
		l.client = goredis.NewClient(opts)
		l.owned = true
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.retry == 0 {
		l.retry = DefaultRetryInterval
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now != nil {
		l.fallback.Now = l.now
	}
	return l, nil
}

// Close waits for a probe in flight and closes the client if New opened
// it. The Limiter must not be used after.
func (l *Limiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.probes.Wait()
	if l.owned {
		return l.client.Close()
	}
	return nil
}

// Ping runs the script once, a write included, and reports whether Redis
// answered within Timeout: a start-up check that the URL is right. It does
// not change whether the Limiter uses Redis or its fallback.
func (l *Limiter) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.ping(ctx); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Take implements latchkey.Limiter. It fails only for a rate whose Every
// is not positive or when ctx ends; a failing Redis is not an error but a
// switch to the fallback.
func (l *Limiter) Take(ctx context.Context, key string, rate latchkey.Rate) (time.Duration, error) {
	every, tolerance, err := micros(rate)
	if err != nil {
		return 0, err
	}
	if s, ok := l.shared(); ok {
		wait, err := l.run(ctx, "take", key, every, tolerance)
		if err == nil {
			return time.Duration(wait) * time.Microsecond, nil
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("redis take: %w", context.Cause(ctx))
		}
		l.markDown(s, err)
	}
	return l.fallback.Take(ctx, key, rate)
}

// Refund implements latchkey.Limiter. An attempt taken from one of Redis
// and the fallback and refunded to the other (Redis went or came back in
// between) is given back where it was not spent, which at worst forgives
// one failure.
func (l *Limiter) Refund(ctx context.Context, key string, rate latchkey.Rate) error {
	every, _, err := micros(rate)
	if err != nil {
		return err
	}
	if s, ok := l.shared(); ok {
		_, err := l.run(ctx, "refund", key, every, 0)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redis refund: %w", context.Cause(ctx))
		}
		l.markDown(s, err)
	}
	return l.fallback.Refund(ctx, key, rate)
}

// Reset implements latchkey.Limiter. The fallback forgets key too, so that
// failures counted there during an earlier outage do not come back at the
// next one. A Reset while Redis is unavailable does not reach Redis: there
// the key keeps its count until its TTL, at most Burst × Every.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	if err := l.fallback.Reset(ctx, key); err != nil {
		return err
	}
	if s, ok := l.shared(); ok {
		err := l.del(ctx, key)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("redis reset: %w", context.Cause(ctx))
		}
		l.markDown(s, err)
	}
	return nil
}

// micros returns rate's Every, rounded up to a microsecond so that the
// limit is never looser than asked, and its tolerance, in microseconds.
func micros(rate latchkey.Rate) (every, tolerance int64, err error) {
	if rate.Every <= 0 {
		return 0, 0, fmt.Errorf("redis: rate every %v is not positive", rate.Every)
	}
	every = int64((rate.Every + time.Microsecond - 1) / time.Microsecond)
	return every, every * int64(max(rate.Burst, 1)-1), nil
}

// key is where key is stored: see "Keys" in the package doc.
func (l *Limiter) key(key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.prefix + hex.EncodeToString(sum[:16])
}

// nowArg is the script's now argument: empty for Redis's clock.
func (l *Limiter) nowArg() string {
	if l.now == nil {
		return ""
	}
	return strconv.FormatInt(l.now().UnixMicro(), 10)
}

// run runs the script for key within Timeout.
func (l *Limiter) run(ctx context.Context, op, key string, every, tolerance int64) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return gcra.Run(ctx, l.client, []string{l.key(key)}, op, l.nowArg(), every, tolerance).Int64()
}

// del deletes key within Timeout.
func (l *Limiter) del(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.client.Del(ctx, l.key(key)).Err()
}

// ping runs the script's probe, on a key no hashed key can be.
func (l *Limiter) ping(ctx context.Context) error {
	return gcra.Run(ctx, l.client, []string{l.prefix + "health"}, "ping", l.nowArg()).Err()
}
