package latchkey_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// TestChangePassword: the policy first, then the current password; the
// new one works and the old does not; every other session ends, by
// session id in the revocation feed, and the current one keeps working,
// access token included.
func TestChangePassword(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	e.MustUser(t, "bob", "password123bob", latchkey.RoleMember)
	here := e.MustLogin(t, "anna", annaPassword)
	phone := e.MustLogin(t, "anna", annaPassword)
	laptop := e.MustLogin(t, "anna", annaPassword)
	bobs := e.MustLogin(t, "bob", "password123bob")
	sid := sidOf(t, e, here)
	since := e.Clock.Now()

	var verr *latchkey.ValidationError
	for _, tc := range []struct{ name, current, next, field string }{
		{"too short", annaPassword, "short", "newPassword"},
		{"same as the current", annaPassword, annaPassword, "newPassword"},
	} {
		if err := e.Service.ChangePassword(ctx, anna.ID, sid, tc.current, tc.next, client); !errors.As(err, &verr) || verr.Field != tc.field {
			t.Errorf("%s: %v, want a ValidationError on %s", tc.name, err, tc.field)
		}
	}
	if err := e.Service.ChangePassword(ctx, anna.ID, sid, "not her password", "a new password", client); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("a wrong current password: %v, want ErrInvalidCredentials", err)
	}
	e.Clock.Advance(time.Second)
	if err := e.Service.ChangePassword(ctx, anna.ID, sid, annaPassword, "a new password", client); err != nil {
		t.Fatal(err)
	}

	if _, err := e.Service.Login(ctx, "anna", annaPassword, client); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("login with the old password: %v", err)
	}
	e.MustLogin(t, "anna", "a new password")
	if _, err := e.Service.Refresh(ctx, here.RefreshToken, client); err != nil {
		t.Errorf("the session the change came from: %v, want it kept", err)
	}
	for name, p := range map[string]*latchkey.TokenPair{"phone": phone, "laptop": laptop} {
		if _, err := e.Service.Refresh(ctx, p.RefreshToken, client); !errors.Is(err, latchkey.ErrInvalidGrant) {
			t.Errorf("%s's refresh after the change: %v, want ErrInvalidGrant", name, err)
		}
	}
	if _, err := e.Service.Refresh(ctx, bobs.RefreshToken, client); err != nil {
		t.Errorf("another user's session: %v", err)
	}
	rev, err := e.Store.Revocations(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	var ended []string
	for _, r := range rev.Sessions {
		ended = append(ended, r.ID)
	}
	slices.Sort(ended)
	want := []string{sidOf(t, e, phone), sidOf(t, e, laptop)}
	slices.Sort(want)
	if !slices.Equal(ended, want) || len(rev.Users) != 0 {
		t.Errorf("revocation feed: sessions %v and users %v, want sessions %v and no user entry (the current access token stays good)", ended, rev.Users, want)
	}
	if n := auditTypes(t, e, anna.ID)[latchkey.AuditPasswordChanged]; n != 1 {
		t.Errorf("%d password_changed events, want 1", n)
	}
}

// TestChangePasswordThrottled: the current password is guessed no faster
// than at login, and the two share one count.
func TestChangePasswordThrottled(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	sid := sidOf(t, e, e.MustLogin(t, "anna", annaPassword))
	for i := range latchkey.DefaultLoginRatePerUser.Burst {
		if err := e.Service.ChangePassword(ctx, anna.ID, sid, "guess number "+string(rune('a'+i)), "a new password", latchkey.Client{IP: "198.51.100.7"}); !errors.Is(err, latchkey.ErrInvalidCredentials) {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	var rl *latchkey.RateLimitedError
	if err := e.Service.ChangePassword(ctx, anna.ID, sid, annaPassword, "a new password", latchkey.Client{IP: "198.51.100.8"}); !errors.As(err, &rl) {
		t.Errorf("the right password after the burst: %v, want *RateLimitedError", err)
	}
	if _, err := e.Service.Login(ctx, "anna", annaPassword, latchkey.Client{IP: "198.51.100.9"}); !errors.As(err, &rl) {
		t.Errorf("login after the burst at the password change: %v, want *RateLimitedError", err)
	}
}

// TestMySessions: a user lists and ends their own sessions only; any
// other id, another user's included, is ErrSessionNotFound.
func TestMySessions(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	e.MustUser(t, "bob", "password123bob", latchkey.RoleMember)
	here := e.MustLogin(t, "anna", annaPassword)
	e.Clock.Advance(time.Second)
	phone, err := e.Service.Login(ctx, "anna", annaPassword, latchkey.Client{IP: "203.0.113.5", UserAgent: "Phone/1.0"})
	if err != nil {
		t.Fatal(err)
	}
	bobs := e.MustLogin(t, "bob", "password123bob")
	sid, phoneSID, bobSID := sidOf(t, e, here), sidOf(t, e, phone), sidOf(t, e, bobs)

	list, err := e.Service.MySessions(ctx, anna.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != phoneSID || list[1].ID != sid || list[0].UserAgent != "Phone/1.0" || list[0].IP != "203.0.113.5" {
		t.Fatalf("MySessions = %d sessions (%+v), want the phone's then this one, newest first", len(list), list)
	}
	for _, tc := range []struct{ name, id string }{
		{"another user's session", bobSID},
		{"not an id", "../admin"},
		{"an id of nothing", "0190d6a0-0000-7000-8000-000000000000"},
	} {
		if err := e.Service.EndMySession(ctx, anna.ID, sid, tc.id, client); !errors.Is(err, latchkey.ErrSessionNotFound) {
			t.Errorf("%s: %v, want ErrSessionNotFound", tc.name, err)
		}
	}
	if _, err := e.Service.Refresh(ctx, bobs.RefreshToken, client); err != nil {
		t.Errorf("bob's session after anna tried to end it: %v", err)
	}
	if err := e.Service.EndMySession(ctx, anna.ID, sid, phoneSID, client); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.Refresh(ctx, phone.RefreshToken, client); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("the ended session's refresh: %v, want ErrInvalidGrant", err)
	}
	if err := e.Service.EndMySession(ctx, anna.ID, sid, phoneSID, client); !errors.Is(err, latchkey.ErrSessionNotFound) {
		t.Errorf("ending it twice: %v, want ErrSessionNotFound", err)
	}
	if list, _ := e.Service.MySessions(ctx, anna.ID); len(list) != 1 || list[0].ID != sid {
		t.Errorf("MySessions after ending the phone = %+v, want this session alone", list)
	}
	if err := e.Service.CheckSession(ctx, phoneSID); !errors.Is(err, latchkey.ErrSessionRevoked) {
		t.Errorf("CheckSession of the ended session: %v", err)
	}
	if n := auditTypes(t, e, anna.ID)[latchkey.AuditSessionEnded]; n != 1 {
		t.Errorf("%d session_ended events, want 1", n)
	}
}

// hookStore runs beforeSetPassword just before a SetPassword reaches the
// store: the moment a concurrent request could change the user.
type hookStore struct {
	latchkey.Store
	beforeSetPassword func()
}

func (h *hookStore) SetPassword(ctx context.Context, id, hash string, end *latchkey.EndSessions) (int, error) {
	if h.beforeSetPassword != nil {
		h.beforeSetPassword()
	}
	return h.Store.SetPassword(ctx, id, hash, end)
}

// TestPasswordChangeKeepsConcurrentDisable: an admin who disables and
// demotes a user while that user's password change is between its read
// and its write is not undone by it (the change used to write the whole
// user row back).
func TestPasswordChangeKeepsConcurrentDisable(t *testing.T) {
	hook := &hookStore{}
	e := newTestService(t, func(c *latchkey.Config) { hook.Store = c.Store; c.Store = hook })
	ctx := t.Context()
	root := e.MustUser(t, "root", "password123root", latchkey.RoleAdmin)
	mallory := e.MustUser(t, "mallory", "password123mallory", latchkey.RoleAdmin)
	sid := sidOf(t, e, e.MustLogin(t, "mallory", "password123mallory"))
	hook.beforeSetPassword = func() {
		hook.beforeSetPassword = nil
		yes, member := true, latchkey.RoleMember
		if _, err := e.Service.UpdateUser(ctx, as(root), mallory.ID, latchkey.UserUpdate{Disabled: &yes, Role: &member}); err != nil {
			t.Error(err)
		}
	}
	if err := e.Service.ChangePassword(ctx, mallory.ID, sid, "password123mallory", "password456mallory", client); err != nil {
		t.Fatal(err)
	}
	u, err := e.Store.UserByID(ctx, mallory.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled || u.Role != latchkey.RoleMember {
		t.Errorf("after a password change racing a disable: disabled=%v role=%s, want disabled member", u.Disabled, u.Role)
	}
	if _, err := e.Service.Login(ctx, "mallory", "password456mallory", client); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("login of the disabled user: %v, want ErrInvalidCredentials", err)
	}
}

// TestPasswordChangeEndsPendingSecondSteps: a password step taken with
// the old password cannot be finished after a change or a reset, even
// with the right code (a phished password and a relayed code).
func TestPasswordChangeEndsPendingSecondSteps(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, codes := enrol(t, e, anna, annaPassword)

	stolen := firstStep(t, e, "anna", annaPassword)
	if err := e.Service.ResetPassword(ctx, as(admin), anna.ID, "reset by the admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.LoginMFA(ctx, stolen, code(t, secret, e.Clock.Now()), client); !errors.Is(err, latchkey.ErrInvalidMFAToken) {
		t.Errorf("a second step begun before the reset: %v, want ErrInvalidMFAToken", err)
	}

	stolen = firstStep(t, e, "anna", "reset by the admin")
	p, err := e.Service.LoginMFA(ctx, firstStep(t, e, "anna", "reset by the admin"), codes[0], client)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Service.ChangePassword(ctx, anna.ID, sidOf(t, e, p), "reset by the admin", "chosen by anna", client); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.LoginMFA(ctx, stolen, codes[1], client); !errors.Is(err, latchkey.ErrInvalidMFAToken) {
		t.Errorf("a second step begun before the change: %v, want ErrInvalidMFAToken", err)
	}
}

// TestRacingSecondStepsSpendOneCode: two second steps with one mfaToken
// and two different recovery codes give one session and spend one code;
// the loser's code stays good.
func TestRacingSecondStepsSpendOneCode(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	_, codes := enrol(t, e, anna, annaPassword)
	for round := range 4 {
		tok := firstStep(t, e, "anna", annaPassword)
		var wg sync.WaitGroup
		var won atomic.Int32
		for _, c := range codes[2*round : 2*round+2] {
			wg.Go(func() {
				if _, err := e.Service.LoginMFA(ctx, tok, c, client); err == nil {
					won.Add(1)
				} else if !errors.Is(err, latchkey.ErrInvalidMFAToken) {
					t.Errorf("racing second step: %v", err)
				}
			})
		}
		wg.Wait()
		_, left, err := e.Service.TOTPStatus(ctx, anna.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := latchkey.RecoveryCodeCount - round - 1; won.Load() != 1 || left != want {
			t.Fatalf("round %d: %d sessions, %d codes left; want 1 session and %d left", round, won.Load(), left, want)
		}
	}
}

// codeHookStore runs duringCode while a second step's code is checked:
// after the step claimed its mfaToken, before it puts it back.
type codeHookStore struct {
	latchkey.Store
	duringCode func()
}

func (h *codeHookStore) UseRecoveryCode(ctx context.Context, id string, hash []byte, at time.Time) error {
	if h.duringCode != nil {
		h.duringCode()
	}
	return h.Store.UseRecoveryCode(ctx, id, hash, at)
}

// TestResetDuringWrongCodeEndsTheStep: a reset landing while a wrong
// code is checked (the mfaToken claimed, to be put back) still ends the
// step: the token put back is deleted again.
func TestResetDuringWrongCodeEndsTheStep(t *testing.T) {
	hook := &codeHookStore{}
	e := newTestService(t, func(c *latchkey.Config) { hook.Store = c.Store; c.Store = hook })
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	_, codes := enrol(t, e, anna, annaPassword)
	stolen := firstStep(t, e, "anna", annaPassword)
	hook.duringCode = func() {
		hook.duringCode = nil
		if err := e.Service.ResetPassword(ctx, as(admin), anna.ID, "reset by the admin"); err != nil {
			t.Error(err)
		}
	}
	if _, err := e.Service.LoginMFA(ctx, stolen, "aaaa-aaaa-aaaa-aaaa", client); !errors.Is(err, latchkey.ErrInvalidCode) {
		t.Fatalf("a wrong recovery code: %v, want ErrInvalidCode", err)
	}
	if _, err := e.Service.LoginMFA(ctx, stolen, codes[0], client); !errors.Is(err, latchkey.ErrInvalidMFAToken) {
		t.Errorf("the step begun before the reset, after it: %v, want ErrInvalidMFAToken", err)
	}
}
