// Package latchkeytest builds a real latchkey.Service for tests, as
// net/http/httptest builds real servers: a SQLite file in a temporary
// directory, signing keys generated on first open, an argon2id cheap
// enough for thousands of logins, and a clock the test moves by hand.
// Every test of the domain, of the HTTP layer and of the interop suite
// starts from here, so the set-up is written once.
package latchkeytest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/sqlite"
	"github.com/latchkey-dev/latchkey/token"
)

// FastArgon2 keeps tests quick. The production cost is measured in the
// benchmarks; stored hashes with these parameters are upgraded at login
// by a Service configured with the default ones.
var FastArgon2 = latchkey.Argon2Params{Memory: 64, Time: 1, Threads: 1}

// Start is the time a Clock starts at.
var Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is a clock the test moves by hand. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Options change what New builds. The zero value is an ES256 Service with
// issuer https://auth.test, audience latchkey, a 10 s grace window and a
// Clock at Start.
type Options struct {
	// Secret, when set, signs HS256 with this shared secret.
	Secret []byte
	// Alg is the signing algorithm when Secret is unset (default ES256).
	Alg string
	// Path is the SQLite file (default: auth.db in a temporary directory).
	// Two Services on one Path see the same data, as after a restart.
	Path string
	// RealTime uses time.Now instead of a Clock, for tokens that an outside
	// verifier checks against the wall clock.
	RealTime bool
	// Config, when set, edits the configuration before NewService.
	Config func(*latchkey.Config)
}

// Env is what New built. The store is closed when the test ends.
type Env struct {
	Service *latchkey.Service
	Store   latchkey.Store
	Keys    *latchkey.KeyRing
	Config  latchkey.Config
	// Clock is nil with Options.RealTime.
	Clock *Clock
	// Verifier checks the Service's access tokens on the Env's clock.
	Verifier *token.Verifier
}

// New builds a Service as Options say, failing tb on any error.
func New(tb testing.TB, o Options) *Env {
	tb.Helper()
	ctx := context.Background()
	path := o.Path
	if path == "" {
		path = tb.TempDir() + "/auth.db"
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { st.Close() })

	e := &Env{Store: st}
	now := time.Now
	if !o.RealTime {
		e.Clock = NewClock(Start)
		now = e.Clock.Now
	}
	audit := latchkey.NewAuditLog(st, nil, now)
	if o.Secret != nil {
		e.Keys, err = latchkey.SharedSecretKeyRing(o.Secret, nil)
	} else {
		e.Keys, err = latchkey.NewKeyRing(ctx, latchkey.KeyRingConfig{Store: st, Alg: o.Alg, Now: now, Audit: audit})
	}
	if err != nil {
		tb.Fatalf("signing keys: %v", err)
	}
	e.Config = latchkey.Config{
		Store:      st,
		Signer:     e.Keys,
		Issuer:     "https://auth.test",
		Audience:   "latchkey",
		ReuseGrace: 10 * time.Second,
		Argon2:     FastArgon2,
		Audit:      audit,
		Now:        now,
	}
	if o.Config != nil {
		o.Config(&e.Config)
	}
	if e.Service, err = latchkey.NewService(e.Config); err != nil {
		tb.Fatalf("new service: %v", err)
	}
	e.Verifier = token.NewVerifier(e.Keys, token.WithIssuer(e.Config.Issuer),
		token.WithAudience(e.Config.Audience), token.WithNow(now))
	return e
}

// MustUser creates a user, failing tb on any error.
func (e *Env) MustUser(tb testing.TB, name, password string, role latchkey.Role) *latchkey.User {
	tb.Helper()
	u, err := e.Service.CreateUser(context.Background(), name, password, role)
	if err != nil {
		tb.Fatalf("create user %s: %v", name, err)
	}
	return u
}

// MustLogin logs in from 192.0.2.1, failing tb on any error.
func (e *Env) MustLogin(tb testing.TB, name, password string) *latchkey.TokenPair {
	tb.Helper()
	p, err := e.Service.Login(context.Background(), name, password, latchkey.Client{IP: "192.0.2.1"})
	if err != nil {
		tb.Fatalf("login %s: %v", name, err)
	}
	return p
}
