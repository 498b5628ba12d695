package redis

import (
	"context"
	"time"
)

// shared reports whether a call should go to Redis, and the state it saw.
// While Redis is unavailable it answers no at the cost of an atomic load,
// and starts a probe when one is due.
func (l *Limiter) shared() (state uint64, ok bool) {
	s := l.state.Load()
	if s%2 == 0 {
		return s, true
	}
	l.maybeProbe(s)
	return s, false
}

// markDown switches to the fallback after err, unless a call that began in
// the same state s has already done so or the state has moved on since.
func (l *Limiter) markDown(s uint64, err error) {
	l.mu.Lock()
	switched := l.state.CompareAndSwap(s, s+1)
	if switched {
		l.nextProbe = time.Now().Add(l.retry)
	}
	l.mu.Unlock()
	if switched {
		l.log.Warn("redis limiter: Redis unavailable, login throttling counts in this process only until it returns",
			"err", err, "retry_every", l.retry)
	}
}

// maybeProbe starts a probe in the background if none is running and the
// last one is RetryInterval old: while Redis is down, no login waits for a
// dial or a timeout, and Redis is asked once per interval, not once per
// login.
func (l *Limiter) maybeProbe(s uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.probing || time.Now().Before(l.nextProbe) {
		return
	}
	l.probing = true
	l.probes.Add(1)
	go l.probe(s)
}

// probe asks Redis whether it is back, and switches to it if so.
func (l *Limiter) probe(s uint64) {
	defer l.probes.Done()
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := l.ping(ctx)
	cancel()

	l.mu.Lock()
	l.probing = false
	switched := false
	if err != nil {
		l.nextProbe = time.Now().Add(l.retry)
	} else {
		switched = l.state.CompareAndSwap(s, s+1)
	}
	l.mu.Unlock()
	switch {
	case err != nil:
		l.log.Debug("redis limiter: probe failed", "err", err)
	case switched:
		l.log.Info("redis limiter: Redis is back, login throttling is shared across replicas again")
	}
}
