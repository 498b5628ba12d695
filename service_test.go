package latchkey_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// newTestService is the package's one fixture: a Service on a temporary
// SQLite file with a hand-moved clock.
func newTestService(tb testing.TB, mod func(*latchkey.Config)) *latchkeytest.Env {
	tb.Helper()
	return latchkeytest.New(tb, latchkeytest.Options{Config: mod})
}

func TestLoginIssuesVerifiableTokens(t *testing.T) {
	e := newTestService(t, nil)
	u := e.MustUser(t, "John", "password123admin", latchkey.RoleAdmin)
	// Usernames are matched without regard to case.
	p := e.MustLogin(t, "john", "password123admin")
	c, err := e.Verifier.Verify(context.Background(), p.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != u.ID || c.Username != "John" || c.Role != "admin" || c.SessionID == "" || c.ID == "" {
		t.Errorf("claims = %+v", c)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt); got != latchkey.DefaultAccessTTL {
		t.Errorf("lifetime = %s, want %s", got, latchkey.DefaultAccessTTL)
	}
	if len(p.RefreshToken) != 43 {
		t.Errorf("refresh token %d chars, want 43 (256 bits base64url)", len(p.RefreshToken))
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := newTestService(t, nil)
	ctx := context.Background()
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	d := e.MustUser(t, "dora", "password123member", latchkey.RoleMember)
	d.Disabled = true
	if err := e.Store.UpdateUser(ctx, d); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, user, pass string }{
		{"unknown user", "nobody", "password123member"},
		{"wrong password", "anna", "password123wrong"},
		{"disabled user with right password", "dora", "password123member"},
		{"username breaking the policy", "a b", "password123member"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Service.Login(ctx, tc.user, tc.pass, latchkey.Client{})
			if !errors.Is(err, latchkey.ErrInvalidCredentials) {
				t.Errorf("err = %v, want ErrInvalidCredentials", err)
			}
		})
	}
}

func TestLoginThrottlesPerUsernameAndAddress(t *testing.T) {
	ctx := context.Background()
	// The limiter shares the service's clock.
	lim := latchkey.NewMemoryLimiter()
	e := newTestService(t, func(c *latchkey.Config) {
		c.LoginRatePerUser = latchkey.Rate{Burst: 3, Every: time.Minute}
		c.LoginRatePerIP = latchkey.Rate{Burst: 5, Every: time.Minute}
		c.Limiter = lim
	})
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	lim.Now = e.Clock.Now

	from := latchkey.Client{IP: "198.51.100.7"}
	for i := range 3 {
		if _, err := e.Service.Login(ctx, "anna", "wrong-password", from); !errors.Is(err, latchkey.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// The right password does not get through a locked username either.
	_, err := e.Service.Login(ctx, "ANNA", "password123member", latchkey.Client{IP: "203.0.113.9"})
	var rl *latchkey.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
		t.Fatalf("4th attempt: %v, want RateLimitedError within a minute", err)
	}
	e.Clock.Advance(time.Minute)
	if _, err := e.Service.Login(ctx, "anna", "password123member", from); err != nil {
		t.Fatalf("after waiting: %v", err)
	}
	// A success resets the username's count: two typos later are fine.
	for range 2 {
		e.Service.Login(ctx, "anna", "typo-password", latchkey.Client{IP: "203.0.113.10"})
	}
	if _, err := e.Service.Login(ctx, "anna", "password123member", latchkey.Client{IP: "203.0.113.10"}); err != nil {
		t.Fatalf("after two typos: %v", err)
	}

	// One address spraying many usernames runs out too.
	spray := latchkey.Client{IP: "192.0.2.66"}
	var limited bool
	for i := range 10 {
		_, err := e.Service.Login(ctx, "user"+strings.Repeat("x", i), "password123", spray)
		if errors.As(err, &rl) {
			limited = true
			if i != 5 {
				t.Errorf("address limited after %d attempts, want 5", i)
			}
			break
		}
	}
	if !limited {
		t.Error("address never limited")
	}

	// Only failures count: many people behind one address log in freely.
	office := latchkey.Client{IP: "192.0.2.80"}
	for i := range 20 {
		if _, err := e.Service.Login(ctx, "anna", "password123member", office); err != nil {
			t.Fatalf("successful login %d from one address: %v", i, err)
		}
	}
	// A megabyte username is refused without becoming a limiter key.
	if _, err := e.Service.Login(ctx, strings.Repeat("u", 1<<20), "password123", office); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("huge username: %v", err)
	}
}

func TestPasswordHashUpgradedOnLogin(t *testing.T) {
	weak := latchkey.Argon2Params{Memory: 32, Time: 1, Threads: 1}
	e := newTestService(t, nil)
	ctx := context.Background()
	u := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	if _, err := e.Store.SetPassword(ctx, u.ID, latchkey.HashPassword("password123member", weak), nil); err != nil {
		t.Fatal(err)
	}
	e.MustLogin(t, "anna", "password123member")
	got, err := e.Store.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.PasswordHash, "m=64,t=1,p=1") {
		t.Errorf("hash not upgraded: %s", got.PasswordHash)
	}
	e.MustLogin(t, "anna", "password123member")
}

func TestRefreshRotates(t *testing.T) {
	e := newTestService(t, nil)
	ctx := context.Background()
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	p0 := e.MustLogin(t, "anna", "password123member")

	e.Clock.Advance(time.Minute)
	p1, err := e.Service.Refresh(ctx, p0.RefreshToken, latchkey.Client{})
	if err != nil {
		t.Fatal(err)
	}
	if p1.RefreshToken == p0.RefreshToken || p1.AccessToken == p0.AccessToken {
		t.Fatal("refresh returned the same tokens")
	}
	c0, _ := e.Verifier.Verify(ctx, p0.AccessToken)
	c1, err := e.Verifier.Verify(ctx, p1.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c0.SessionID != c1.SessionID || c0.ID == c1.ID {
		t.Errorf("session %s→%s, jti %s→%s", c0.SessionID, c1.SessionID, c0.ID, c1.ID)
	}
	e.Clock.Advance(time.Minute)
	if _, err := e.Service.Refresh(ctx, p1.RefreshToken, latchkey.Client{}); err != nil {
		t.Fatal(err)
	}
}

func TestRefreshGraceReturnsSameSuccessor(t *testing.T) {
	e := newTestService(t, nil)
	ctx := context.Background()
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	p0 := e.MustLogin(t, "anna", "password123member")

	p1, err := e.Service.Refresh(ctx, p0.RefreshToken, latchkey.Client{})
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(9 * time.Second)
	retry, err := e.Service.Refresh(ctx, p0.RefreshToken, latchkey.Client{})
	if err != nil {
		t.Fatalf("retry within grace: %v", err)
	}
	if retry.RefreshToken != p1.RefreshToken {
		t.Error("retry within grace forked the chain: got a different successor")
	}
	if retry.AccessToken == p1.AccessToken {
		t.Error("retry should carry a fresh access token")
	}
	// The successor is still live: the retry did not rotate it.
	p2, err := e.Service.Refresh(ctx, p1.RefreshToken, latchkey.Client{})
	if err != nil {
		t.Fatalf("successor after retry: %v", err)
	}
	// Only the immediately previous token is covered: p0 is now two back.
	if _, err := e.Service.Refresh(ctx, p0.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Fatalf("token two back: %v, want ErrInvalidGrant", err)
	}
	// ... and presenting it was reuse: the newest token died with the session.
	if _, err := e.Service.Refresh(ctx, p2.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Fatalf("newest token after reuse: %v, want ErrInvalidGrant", err)
	}
}

func TestRefreshReuseAfterGraceRevokesSession(t *testing.T) {
	e := newTestService(t, nil)
	ctx := context.Background()
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	p0 := e.MustLogin(t, "anna", "password123member")
	other := e.MustLogin(t, "anna", "password123member")
	p1, err := e.Service.Refresh(ctx, p0.RefreshToken, latchkey.Client{})
	if err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(11 * time.Second)
	if _, err := e.Service.Refresh(ctx, p0.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := e.Service.Refresh(ctx, p1.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Fatalf("newest token after reuse: %v, want ErrInvalidGrant", err)
	}
	c, _ := e.Verifier.Verify(ctx, p1.AccessToken)
	if err := e.Service.CheckSession(ctx, c.SessionID); !errors.Is(err, latchkey.ErrSessionRevoked) {
		t.Errorf("CheckSession = %v, want ErrSessionRevoked", err)
	}
	// Another login of the same user is a different session and lives on.
	if _, err := e.Service.Refresh(ctx, other.RefreshToken, latchkey.Client{}); err != nil {
		t.Errorf("other session: %v", err)
	}
}

func TestRefreshConcurrent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{
		{"grace 0: exactly one succeeds, the duplicates count as reuse", 0},
		{"grace 10s: all get the one successor", 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestService(t, func(c *latchkey.Config) { c.ReuseGrace = tc.grace })
			ctx := context.Background()
			e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
			p0 := e.MustLogin(t, "anna", "password123member")

			const n = 20
			var wg sync.WaitGroup
			var ok atomic.Int32
			successors := make([]string, n)
			for i := range n {
				wg.Go(func() {
					p, err := e.Service.Refresh(ctx, p0.RefreshToken, latchkey.Client{})
					if err == nil {
						ok.Add(1)
						successors[i] = p.RefreshToken
					} else if !errors.Is(err, latchkey.ErrInvalidGrant) {
						t.Errorf("refresh: %v", err)
					}
				})
			}
			wg.Wait()
			distinct := map[string]bool{}
			for _, s := range successors {
				if s != "" {
					distinct[s] = true
				}
			}
			if len(distinct) != 1 {
				t.Fatalf("%d distinct successors, want 1 (the chain forked)", len(distinct))
			}
			if tc.grace == 0 && ok.Load() != 1 {
				t.Errorf("%d successes with grace 0, want exactly 1", ok.Load())
			}
			if tc.grace > 0 && ok.Load() != n {
				t.Errorf("%d successes within grace, want %d", ok.Load(), n)
			}
			// Within grace the racing tabs all hold the one live successor.
			// Without grace, the duplicates were second uses of a retired
			// token, and reuse revokes the session, successor included.
			for s := range distinct {
				_, err := e.Service.Refresh(ctx, s, latchkey.Client{})
				if tc.grace > 0 && err != nil {
					t.Errorf("successor within grace: %v", err)
				}
				if tc.grace == 0 && !errors.Is(err, latchkey.ErrInvalidGrant) {
					t.Errorf("successor after duplicates with grace 0: %v, want ErrInvalidGrant", err)
				}
			}
		})
	}
}

func TestRefreshLifetimes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		steps   []time.Duration // wait, then refresh
		wantErr bool
	}{
		{"used within idle lifetime keeps going", []time.Duration{6 * 24 * time.Hour, 6 * 24 * time.Hour, 6 * 24 * time.Hour}, false},
		{"idle past 7 days dies", []time.Duration{7*24*time.Hour + time.Second}, true},
		{"absolute lifetime ends an active session", []time.Duration{6 * 24 * time.Hour, 6 * 24 * time.Hour, 6 * 24 * time.Hour, 6 * 24 * time.Hour, 6 * 24 * time.Hour, 24 * time.Hour}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestService(t, nil)
			ctx := context.Background()
			e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
			rt := e.MustLogin(t, "anna", "password123member").RefreshToken
			var err error
			for _, wait := range tc.steps {
				e.Clock.Advance(wait)
				var p *latchkey.TokenPair
				if p, err = e.Service.Refresh(ctx, rt, latchkey.Client{}); err != nil {
					break
				}
				rt = p.RefreshToken
			}
			if tc.wantErr != errors.Is(err, latchkey.ErrInvalidGrant) {
				t.Errorf("err = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestLogout(t *testing.T) {
	e := newTestService(t, nil)
	ctx := context.Background()
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	a := e.MustLogin(t, "anna", "password123member")
	b := e.MustLogin(t, "anna", "password123member")

	if err := e.Service.Logout(ctx, a.RefreshToken, latchkey.Client{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.Refresh(ctx, a.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("refresh after logout: %v", err)
	}
	// Idempotent, and unknown or malformed tokens are not errors.
	for _, tok := range []string{a.RefreshToken, strings.Repeat("A", 43), "short"} {
		if err := e.Service.Logout(ctx, tok, latchkey.Client{}); err != nil {
			t.Errorf("logout %q: %v", tok, err)
		}
	}
	if _, err := e.Service.Refresh(ctx, b.RefreshToken, latchkey.Client{}); err != nil {
		t.Errorf("other session after logout: %v", err)
	}

	c, _ := e.Verifier.Verify(ctx, b.AccessToken)
	if err := e.Service.LogoutAll(ctx, c.Subject, c.SessionID, latchkey.Client{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Service.CheckSession(ctx, c.SessionID); !errors.Is(err, latchkey.ErrSessionRevoked) {
		t.Errorf("CheckSession after logout-all: %v", err)
	}
}

func TestRegister(t *testing.T) {
	e := newTestService(t, nil)
	ctx := context.Background()
	u, err := e.Service.Register(ctx, "Anna.B-1@x_y", "pässwörd-ünïcode", latchkey.Client{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != latchkey.RoleMember || u.CreatedAt.Location() != time.UTC {
		t.Errorf("user = %+v", u)
	}
	if _, err := e.Service.Register(ctx, "anna.b-1@X_Y", "password123", latchkey.Client{}); !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("case-insensitive duplicate: %v", err)
	}
	var verr *latchkey.ValidationError
	for _, tc := range []struct{ name, user, pass string }{
		{"short username", "ab", "password123"},
		{"long username", strings.Repeat("a", 65), "password123"},
		{"cyrillic look-alike", "аnna", "password123"},
		{"space", "an na", "password123"},
		{"short password", "newuser", "1234567"},
		{"short in characters though long in bytes", "newuser", "ééééééé"},
		{"long password", "newuser", strings.Repeat("p", 129)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.Service.Register(ctx, tc.user, tc.pass, latchkey.Client{}); !errors.As(err, &verr) {
				t.Errorf("err = %v, want ValidationError", err)
			}
		})
	}
	closed := newTestService(t, func(c *latchkey.Config) { c.RegistrationClosed = true })
	if _, err := closed.Service.Register(ctx, "someone", "password123", latchkey.Client{}); !errors.Is(err, latchkey.ErrRegistrationClosed) {
		t.Errorf("closed registration: %v", err)
	}
}

func TestDisabledUserCannotRefresh(t *testing.T) {
	e := newTestService(t, nil)
	ctx := context.Background()
	u := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	p := e.MustLogin(t, "anna", "password123member")
	u.Disabled = true
	if err := e.Store.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.Refresh(ctx, p.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("refresh of disabled user: %v", err)
	}
}

func TestSessionsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/auth.db"
	open := func() (*latchkey.Service, latchkey.Store) {
		e := latchkeytest.New(t, latchkeytest.Options{Path: path})
		return e.Service, e.Store
	}
	svc, st := open()
	if _, err := svc.CreateUser(ctx, "anna", "password123member", latchkey.RoleMember); err != nil {
		t.Fatal(err)
	}
	p, err := svc.Login(ctx, "anna", "password123member", latchkey.Client{})
	if err != nil {
		t.Fatal(err)
	}
	kid1 := firstKID(t, st)
	st.Close()

	svc, st = open()
	defer st.Close()
	if _, err := svc.Refresh(ctx, p.RefreshToken, latchkey.Client{}); err != nil {
		t.Fatalf("refresh after restart: %v", err)
	}
	if kid2 := firstKID(t, st); kid1 != kid2 {
		t.Errorf("signing key changed across restart: %s → %s", kid1, kid2)
	}
}

// firstKID is the active key's kid; a first start stores an active and a
// next key and nothing else.
func firstKID(t *testing.T, st latchkey.Store) string {
	t.Helper()
	keys, err := st.SigningKeys(context.Background())
	if err != nil || len(keys) != 2 || keys[1].State != latchkey.KeyActive || keys[0].State != latchkey.KeyNext {
		t.Fatalf("keys = %+v, %v; want a next and an active key", keys, err)
	}
	return keys[1].ID
}

// lookupCounter counts a store's username lookups.
type lookupCounter struct {
	latchkey.Store
	n atomic.Int64
}

func (s *lookupCounter) UserByUsername(ctx context.Context, name string) (*latchkey.User, error) {
	s.n.Add(1)
	return s.Store.UserByUsername(ctx, name)
}

// TestBusyPasswordGate: when every argon2id slot and queue place is taken,
// logins and registrations are turned away at once with ErrBusy, before a
// login looks its user up, and a turned-away login does not count against
// the user's or the address's allowance.
func TestBusyPasswordGate(t *testing.T) {
	lookups := &lookupCounter{}
	e := newTestService(t, func(c *latchkey.Config) {
		lookups.Store = c.Store
		c.Store = lookups
		c.PasswordConcurrency = 1
		c.PasswordQueue = 1
		c.LoginRatePerUser = latchkey.Rate{Burst: 2, Every: time.Hour}
		c.LoginRatePerIP = latchkey.Rate{Burst: 2, Every: time.Hour}
	})
	e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	ctx := t.Context()
	client := latchkey.Client{IP: "192.0.2.7"}

	release := latchkey.FillPasswordGate(e.Service)
	before := lookups.n.Load()
	for range 5 { // more than either allowance
		for _, name := range []string{"anna", "nobody"} {
			if _, err := e.Service.Login(ctx, name, "password123member", client); !errors.Is(err, latchkey.ErrBusy) {
				t.Fatalf("Login(%s) with the gate full: %v, want ErrBusy", name, err)
			}
		}
	}
	if n := lookups.n.Load() - before; n != 0 {
		t.Errorf("%d user lookups for logins turned away as busy, want 0", n)
	}
	if _, err := e.Service.Register(ctx, "newcomer", "password123new", latchkey.Client{}); !errors.Is(err, latchkey.ErrBusy) {
		t.Fatalf("Register with the gate full: %v, want ErrBusy", err)
	}
	release()

	if _, err := e.Service.Login(ctx, "anna", "password123member", client); err != nil {
		t.Fatalf("Login after the burst: %v; busy answers must not use up the allowance", err)
	}
	if _, err := e.Store.UserByUsername(ctx, "newcomer"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("a registration turned away as busy created the user")
	}
}

func TestCreateUserTakenUsername(t *testing.T) {
	e := newTestService(t, nil)
	e.MustUser(t, "Anna", "password123member", latchkey.RoleMember)
	_, err := e.Service.CreateUser(t.Context(), "anna", "password123other", latchkey.RoleMember)
	if !errors.Is(err, latchkey.ErrUsernameTaken) || !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("CreateUser(taken) = %v; want ErrUsernameTaken, which matches ErrConflict", err)
	}
	created, err := e.Service.EnsureUser(t.Context(), "ANNA", "password123other", latchkey.RoleAdmin)
	if created || err != nil {
		t.Errorf("EnsureUser(taken) = %v, %v; want false, nil", created, err)
	}
}

// TestSweepSessions: expired sessions are kept for SessionRetention, so a
// token of a recently expired chain is still recognised, then deleted;
// live sessions are never touched.
func TestSweepSessions(t *testing.T) {
	e := newTestService(t, func(c *latchkey.Config) { c.RefreshIdleTTL = time.Hour })
	ctx := t.Context()
	anna := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	expiring := e.MustLogin(t, "anna", "password123member")
	e.Clock.Advance(2 * time.Hour) // expiring is an hour past its deadline
	live := e.MustLogin(t, "anna", "password123member")

	if n, err := e.Service.SweepSessions(ctx); err != nil || n != 0 {
		t.Fatalf("SweepSessions within the retention = %d, %v; want 0", n, err)
	}
	e.Clock.Advance(latchkey.SessionRetention - time.Hour + time.Second) // live is now expired too, but only just
	if n, err := e.Service.SweepSessions(ctx); err != nil || n != 1 {
		t.Fatalf("SweepSessions past the retention = %d, %v; want 1", n, err)
	}
	if _, err := e.Service.Refresh(ctx, expiring.RefreshToken, latchkey.Client{}); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("refresh of a swept session: %v, want ErrInvalidGrant", err)
	}
	all, err := e.Store.ListSessions(ctx, anna.ID)
	if err != nil || len(all) != 1 {
		t.Fatalf("sessions left = %d, %v; want the second login's", len(all), err)
	}
	if _, err := e.Store.SessionByTokenHash(ctx, hashOf(live.RefreshToken)); err != nil {
		t.Errorf("the recently expired session's token is no longer recognised: %v", err)
	}
}

// hashOf is how a Store keys refresh tokens.
func hashOf(refresh string) []byte {
	h := sha256.Sum256([]byte(refresh))
	return h[:]
}

// TestRegisterThrottledPerAddress: one address gets the allowance and then
// a *RateLimitedError; invalid input costs nothing, a taken username
// counts, another address is unaffected, and the allowance comes back
// with time.
func TestRegisterThrottledPerAddress(t *testing.T) {
	e := newTestService(t, func(c *latchkey.Config) {
		c.RegisterRatePerIP = latchkey.Rate{Burst: 3, Every: time.Minute}
	})
	ctx := t.Context()
	here, there := latchkey.Client{IP: "198.51.100.1"}, latchkey.Client{IP: "198.51.100.2"}

	var verr *latchkey.ValidationError
	for range 5 {
		if _, err := e.Service.Register(ctx, "x", "short", here); !errors.As(err, &verr) {
			t.Fatalf("invalid registration: %v, want a ValidationError", err)
		}
	}
	if _, err := e.Service.Register(ctx, "user1", "password123", here); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.Register(ctx, "USER1", "password123", here); !errors.Is(err, latchkey.ErrUsernameTaken) {
		t.Fatalf("taken: %v", err)
	}
	if _, err := e.Service.Register(ctx, "user2", "password123", here); err != nil {
		t.Fatal(err)
	}
	_, err := e.Service.Register(ctx, "user3", "password123", here)
	var rl *latchkey.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter <= 0 || rl.RetryAfter > time.Minute {
		t.Fatalf("4th registration from one address: %v, want RateLimitedError within a minute", err)
	}
	if _, err := e.Store.UserByUsername(ctx, "user3"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("a limited registration created the user: %v", err)
	}
	if _, err := e.Service.Register(ctx, "user4", "password123", there); err != nil {
		t.Errorf("another address: %v", err)
	}
	e.Clock.Advance(rl.RetryAfter)
	if _, err := e.Service.Register(ctx, "user3", "password123", here); err != nil {
		t.Errorf("after the wait: %v", err)
	}
}

// TestNewServiceRefusesBadConfig: each required field and each negative
// duration is refused at construction, so no handler ever sees one (the
// refresh cookie's Max-Age is the Service's idle lifetime, for one).
func TestNewServiceRefusesBadConfig(t *testing.T) {
	e := newTestService(t, nil)
	for _, tc := range []struct {
		name string
		mod  func(*latchkey.Config)
	}{
		{"no store", func(c *latchkey.Config) { c.Store = nil }},
		{"no signer", func(c *latchkey.Config) { c.Signer = nil }},
		{"no issuer", func(c *latchkey.Config) { c.Issuer = "" }},
		{"no audience", func(c *latchkey.Config) { c.Audience = "" }},
		{"negative access TTL", func(c *latchkey.Config) { c.AccessTTL = -time.Second }},
		{"negative refresh idle TTL", func(c *latchkey.Config) { c.RefreshIdleTTL = -time.Second }},
		{"negative session max age", func(c *latchkey.Config) { c.SessionMaxAge = -time.Second }},
		{"negative grace", func(c *latchkey.Config) { c.ReuseGrace = -time.Second }},
		{"negative leeway", func(c *latchkey.Config) { c.Leeway = -time.Second }},
		{"negative password concurrency", func(c *latchkey.Config) { c.PasswordConcurrency = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.Config
			tc.mod(&cfg)
			if _, err := latchkey.NewService(cfg); err == nil {
				t.Error("NewService accepted it")
			}
		})
	}
	if s, err := latchkey.NewService(latchkey.Config{Store: e.Store, Signer: e.Keys, Issuer: "https://a", Audience: "b"}); err != nil ||
		s.RefreshIdleTTL() != latchkey.DefaultRefreshIdleTTL {
		t.Errorf("defaults: %v, refresh idle TTL %v", err, s.RefreshIdleTTL())
	}
}
