package latchkey

import (
	"context"
	"sync"
	"time"
)

// Rate is an allowance of attempts: a burst of Burst, refilled at one
// attempt per Every.
type Rate struct {
	Burst int
	Every time.Duration
}

// Limiter counts attempts per key. Implementations are safe for concurrent
// use; a shared one (Redis) lets several auth server replicas count together.
// storetest.RunLimiter checks each promise written here.
type Limiter interface {
	// Take spends one attempt of key's allowance under rate. It returns 0 if
	// the attempt is allowed, or how long until the next one would be, in
	// which case nothing is spent.
	Take(ctx context.Context, key string, rate Rate) (time.Duration, error)

	// Refund gives back one attempt taken under rate, never raising the
	// allowance above a full burst. Login takes an attempt before checking
	// a password and refunds it when the password was right, so that only
	// failures count, without a window in which concurrent guesses could
	// all pass a check before any of them is counted.
	Refund(ctx context.Context, key string, rate Rate) error

	// Reset forgets key, restoring its full allowance.
	Reset(ctx context.Context, key string) error
}

// MemoryLimiter is a Limiter for one process, using the generic cell rate
// algorithm: one timestamp per key, no timers. The zero value is ready to
// use.
type MemoryLimiter struct {
	// Now defaults to time.Now.
	Now func() time.Time

	mu    sync.Mutex
	tat   map[string]time.Time // theoretical arrival time per key
	takes int
}

var _ Limiter = (*MemoryLimiter)(nil)

// NewMemoryLimiter returns an empty MemoryLimiter.
func NewMemoryLimiter() *MemoryLimiter {
	return &MemoryLimiter{Now: time.Now, tat: make(map[string]time.Time)}
}

// sweepEvery bounds memory: every so many takes, keys whose allowance is
// full again are dropped, since forgetting them changes nothing.
const sweepEvery = 4096

// Take implements Limiter.
func (l *MemoryLimiter) Take(_ context.Context, key string, rate Rate) (time.Duration, error) {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	burst := max(rate.Burst, 1)
	tolerance := rate.Every * time.Duration(burst-1)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat == nil {
		l.tat = make(map[string]time.Time)
	}
	l.takes++
	if l.takes%sweepEvery == 0 {
		for k, t := range l.tat {
			if !t.After(now) {
				delete(l.tat, k)
			}
		}
	}
	tat := l.tat[key]
	if tat.Before(now) {
		tat = now
	}
	if wait := tat.Sub(now) - tolerance; wait > 0 {
		return wait, nil
	}
	l.tat[key] = tat.Add(rate.Every)
	return 0, nil
}

// Refund implements Limiter.
func (l *MemoryLimiter) Refund(_ context.Context, key string, rate Rate) error {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, ok := l.tat[key]
	if !ok {
		return nil
	}
	if tat = tat.Add(-rate.Every); !tat.After(now) {
		delete(l.tat, key) // a full allowance is the same as no entry
		return nil
	}
	l.tat[key] = tat
	return nil
}

// Reset implements Limiter.
func (l *MemoryLimiter) Reset(_ context.Context, key string) error {
	l.mu.Lock()
	delete(l.tat, key)
	l.mu.Unlock()
	return nil
}
