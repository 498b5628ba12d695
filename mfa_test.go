package latchkey_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// anna is the member of the account-security tests, with her password.
const annaPassword = "password123member"

var client = latchkey.Client{IP: "192.0.2.1", UserAgent: "mfa_test"}

// sidOf returns the session id of a pair's access token.
func sidOf(tb testing.TB, e *latchkeytest.Env, p *latchkey.TokenPair) string {
	tb.Helper()
	c, err := e.Verifier.Verify(tb.Context(), p.AccessToken)
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	return c.SessionID
}

// enrol turns TOTP on for the user and returns the base32 secret and the
// recovery codes. The clock moves one step on, past the confirming code.
func enrol(tb testing.TB, e *latchkeytest.Env, u *latchkey.User, password string) (string, []string) {
	tb.Helper()
	ctx := tb.Context()
	en, err := e.Service.StartTOTP(ctx, u.ID, "", password, client)
	if err != nil {
		tb.Fatalf("StartTOTP: %v", err)
	}
	codes, err := e.Service.ConfirmTOTP(ctx, u.ID, "", code(tb, en.Secret, e.Clock.Now()), client)
	if err != nil {
		tb.Fatalf("ConfirmTOTP: %v", err)
	}
	e.Clock.Advance(30 * time.Second)
	return en.Secret, codes
}

func code(tb testing.TB, secret string, at time.Time) string {
	tb.Helper()
	c, err := latchkey.TOTPCode(secret, at)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// firstStep logs in with the password and returns the mfaToken.
func firstStep(tb testing.TB, e *latchkeytest.Env, name, password string) string {
	tb.Helper()
	_, err := e.Service.Login(tb.Context(), name, password, client)
	var mfa *latchkey.MFARequiredError
	if !errors.As(err, &mfa) {
		tb.Fatalf("login of a user with TOTP: %v, want *MFARequiredError", err)
	}
	return mfa.Token
}

func TestTOTPEnrolment(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)

	if _, err := e.Service.StartTOTP(ctx, anna.ID, "", "wrong password", client); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("StartTOTP with a wrong password: %v, want ErrInvalidCredentials", err)
	}
	en, err := e.Service.StartTOTP(ctx, anna.ID, "", annaPassword, client)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(en.URL, "otpauth://totp/auth.test:anna?") || !strings.Contains(en.URL, "secret="+en.Secret) {
		t.Errorf("otpauth URL %q does not carry the issuer, the account and the secret", en.URL)
	}
	if len(en.Secret) != 32 { // 160 bits in base32
		t.Errorf("secret %q is %d characters, want 32", en.Secret, len(en.Secret))
	}
	// Pending: the password alone still signs in.
	e.MustLogin(t, "anna", annaPassword)

	var verr *latchkey.ValidationError
	wrong := code(t, en.Secret, e.Clock.Now().Add(-5*time.Minute))
	if _, err := e.Service.ConfirmTOTP(ctx, anna.ID, "", wrong, client); !errors.As(err, &verr) || verr.Field != "code" {
		t.Errorf("ConfirmTOTP with a stale code: %v, want a ValidationError on code", err)
	}
	codes, err := e.Service.ConfirmTOTP(ctx, anna.ID, "", code(t, en.Secret, e.Clock.Now()), client)
	if err != nil {
		t.Fatal(err)
	}
	form := regexp.MustCompile(`^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$`)
	seen := map[string]bool{}
	for _, c := range codes {
		if !form.MatchString(c) || seen[c] {
			t.Errorf("recovery code %q: want xxxx-xxxx-xxxx-xxxx, each distinct", c)
		}
		seen[c] = true
	}
	if len(codes) != latchkey.RecoveryCodeCount {
		t.Errorf("%d recovery codes, want %d", len(codes), latchkey.RecoveryCodeCount)
	}
	if _, err := e.Service.StartTOTP(ctx, anna.ID, "", annaPassword, client); !errors.Is(err, latchkey.ErrTOTPEnabled) {
		t.Errorf("StartTOTP with TOTP on: %v, want ErrTOTPEnabled", err)
	}
	if _, err := e.Service.ConfirmTOTP(ctx, anna.ID, "", code(t, en.Secret, e.Clock.Now()), client); !errors.Is(err, latchkey.ErrTOTPEnabled) {
		t.Errorf("ConfirmTOTP twice: %v, want ErrTOTPEnabled", err)
	}
	on, left, err := e.Service.TOTPStatus(ctx, anna.ID)
	if err != nil || !on || left != latchkey.RecoveryCodeCount {
		t.Errorf("TOTPStatus = %v, %d, %v; want on with %d codes", on, left, err, latchkey.RecoveryCodeCount)
	}

	// The confirming code is spent: it cannot finish a login.
	tok := firstStep(t, e, "anna", annaPassword)
	if _, err := e.Service.LoginMFA(ctx, tok, code(t, en.Secret, e.Clock.Now()), client); !errors.Is(err, latchkey.ErrInvalidCode) {
		t.Errorf("the confirming code at login: %v, want ErrInvalidCode", err)
	}
	e.Clock.Advance(30 * time.Second)
	p, err := e.Service.LoginMFA(ctx, tok, code(t, en.Secret, e.Clock.Now()), client)
	if err != nil {
		t.Fatalf("LoginMFA with the next code: %v", err)
	}
	if _, err := e.Verifier.Verify(ctx, p.AccessToken); err != nil {
		t.Errorf("the second step's access token: %v", err)
	}
}

// TestTOTPCodeWindow: a code is a 6-digit RFC 6238 code of the step of
// now or one either side, at the edges of a step too, never two away.
func TestTOTPCodeWindow(t *testing.T) {
	e := newTestService(t, nil)
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, _ := enrol(t, e, anna, annaPassword)
	tests := []struct {
		name   string
		into   time.Duration // where in its 30 s step the clock stands
		offset time.Duration // the code's time, from the clock's
		ok     bool
	}{
		{"now, mid-step", 15 * time.Second, 0, true},
		{"one step behind, first second of a step", 0, -30 * time.Second, true},
		{"one step ahead, last microsecond of a step", 30*time.Second - time.Microsecond, 30 * time.Second, true},
		{"31 s behind at the end of a step is one step", 30*time.Second - time.Microsecond, -31 * time.Second, true},
		{"two steps behind, first second of a step", 0, -60 * time.Second, false},
		{"two steps ahead", 15 * time.Second, 60 * time.Second, false},
		{"five minutes old", 15 * time.Second, -5 * time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Ten steps on, so no earlier case's code blocks this one.
			e.Clock.Advance(5 * time.Minute)
			now := e.Clock.Now()
			stepStart := now.Truncate(30 * time.Second)
			e.Clock.Advance(stepStart.Add(30*time.Second + tc.into).Sub(now))
			tok := firstStep(t, e, "anna", annaPassword)
			_, err := e.Service.LoginMFA(t.Context(), tok, code(t, secret, e.Clock.Now().Add(tc.offset)), client)
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, latchkey.ErrInvalidCode) {
				t.Errorf("LoginMFA = %v, want accepted %v", err, tc.ok)
			}
		})
	}
}

func TestLoginMFAReplayAndTokens(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, codes := enrol(t, e, anna, annaPassword)
	e.MustUser(t, "bob", "password123bob", latchkey.RoleMember)

	tok := firstStep(t, e, "anna", annaPassword)
	c := code(t, secret, e.Clock.Now())
	if _, err := e.Service.LoginMFA(ctx, tok, c, client); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.LoginMFA(ctx, tok, code(t, secret, e.Clock.Now().Add(30*time.Second)), client); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("a used mfaToken: %v, want ErrInvalidGrant", err)
	}
	tok2 := firstStep(t, e, "anna", annaPassword)
	if _, err := e.Service.LoginMFA(ctx, tok2, c, client); !errors.Is(err, latchkey.ErrInvalidCode) {
		t.Errorf("a replayed code within its window: %v, want ErrInvalidCode", err)
	}
	// A wrong code leaves the mfaToken usable.
	if _, err := e.Service.LoginMFA(ctx, tok2, codes[0], client); err != nil {
		t.Errorf("a recovery code after a wrong code: %v", err)
	}

	for _, tc := range []struct{ name, token string }{
		{"unknown", strings.Repeat("A", 43)},
		{"malformed", "not a token"},
		{"empty", ""},
		{"a refresh token", e.MustLogin(t, "bob", "password123bob").RefreshToken},
	} {
		if _, err := e.Service.LoginMFA(ctx, tc.token, code(t, secret, e.Clock.Now()), client); !errors.Is(err, latchkey.ErrInvalidGrant) {
			t.Errorf("%s mfaToken: %v, want ErrInvalidGrant", tc.name, err)
		}
	}

	tok3 := firstStep(t, e, "anna", annaPassword)
	e.Clock.Advance(latchkey.MFAChallengeTTL)
	if _, err := e.Service.LoginMFA(ctx, tok3, code(t, secret, e.Clock.Now()), client); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("an mfaToken %v old: %v, want ErrInvalidGrant", latchkey.MFAChallengeTTL, err)
	}
	e.Clock.Advance(time.Second)
	// The sweep deletes it.
	if _, err := e.Service.SweepSessions(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.MFAChallenge(ctx, hashOf(tok3)); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("an expired challenge after the sweep: %v, want ErrNotFound", err)
	}
}

func TestRecoveryCodes(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	_, codes := enrol(t, e, anna, annaPassword)

	typed := strings.ToUpper(strings.ReplaceAll(codes[1], "-", " "))
	off := []byte(codes[2])
	off[0] ^= 'a' ^ 'b' // a letter or digit still, and another code
	if off[0] < 'a' {
		off[0] = 'z'
	}
	for _, tc := range []struct {
		name, code string
		ok         bool
	}{
		{"as shown", codes[0], true},
		{"used again", codes[0], false},
		{"upper case with spaces", typed, true},
		{"one character off", string(off), false},
		{"not a code", "hello", false},
	} {
		tok := firstStep(t, e, "anna", annaPassword)
		_, err := e.Service.LoginMFA(ctx, tok, tc.code, client)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, latchkey.ErrInvalidCode) {
			t.Errorf("%s: LoginMFA = %v, want accepted %v", tc.name, err, tc.ok)
		}
	}
	if _, left, _ := e.Service.TOTPStatus(ctx, anna.ID); left != latchkey.RecoveryCodeCount-2 {
		t.Errorf("%d codes left, want %d", left, latchkey.RecoveryCodeCount-2)
	}
	events := auditTypes(t, e, anna.ID)
	if events[latchkey.AuditRecoveryCodeUsed] != 2 || events[latchkey.AuditMFAFailed] < 2 {
		t.Errorf("audit: %v, want 2 recovery_code_used and the failures as mfa_failed", events)
	}
}

// TestCodesThrottledPerUser: wrong codes run out like wrong passwords,
// and then even the right code waits; a fresh password step does not
// reset the count.
func TestCodesThrottledPerUser(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, _ := enrol(t, e, anna, annaPassword)

	burst := latchkey.DefaultLoginRatePerUser.Burst
	for i := range burst {
		tok := firstStep(t, e, "anna", annaPassword)
		if _, err := e.Service.LoginMFA(ctx, tok, "000000", client); !errors.Is(err, latchkey.ErrInvalidCode) {
			t.Fatalf("wrong code %d: %v, want ErrInvalidCode", i+1, err)
		}
	}
	tok := firstStep(t, e, "anna", annaPassword)
	var rl *latchkey.RateLimitedError
	if _, err := e.Service.LoginMFA(ctx, tok, code(t, secret, e.Clock.Now()), client); !errors.As(err, &rl) {
		t.Fatalf("the right code after %d wrong ones: %v, want *RateLimitedError", burst, err)
	}
	e.Clock.Advance(rl.RetryAfter)
	// The wait outlasts the mfaToken: the password step comes again.
	if _, err := e.Service.LoginMFA(ctx, tok, code(t, secret, e.Clock.Now()), client); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("the mfaToken after a %v wait: %v, want ErrInvalidGrant", rl.RetryAfter, err)
	}
	tok = firstStep(t, e, "anna", annaPassword)
	if _, err := e.Service.LoginMFA(ctx, tok, code(t, secret, e.Clock.Now()), client); err != nil {
		t.Errorf("the right code after the wait: %v", err)
	}
}

// TestMFAStepsRefuseDisabledUsers: a user disabled between the two steps
// does not get past the second, even with the right code.
func TestMFAStepsRefuseDisabledUsers(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, _ := enrol(t, e, anna, annaPassword)
	tok := firstStep(t, e, "anna", annaPassword)
	yes := true
	if _, err := e.Service.UpdateUser(ctx, as(admin), anna.ID, latchkey.UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Service.LoginMFA(ctx, tok, code(t, secret, e.Clock.Now()), client); !errors.Is(err, latchkey.ErrInvalidGrant) {
		t.Errorf("second step of a disabled user: %v, want ErrInvalidGrant", err)
	}
	if _, err := e.Service.Login(ctx, "anna", annaPassword, client); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("first step of a disabled user: %v, want ErrInvalidCredentials", err)
	}
}

func TestDisableTOTP(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, codes := enrol(t, e, anna, annaPassword)

	now := code(t, secret, e.Clock.Now())
	if err := e.Service.DisableTOTP(ctx, anna.ID, "", "wrong password", now, client); !errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Errorf("DisableTOTP with a wrong password: %v, want ErrInvalidCredentials", err)
	}
	if err := e.Service.DisableTOTP(ctx, anna.ID, "", annaPassword, "123456", client); !errors.Is(err, latchkey.ErrInvalidCode) {
		t.Errorf("DisableTOTP with a wrong code: %v, want ErrInvalidCode", err)
	}
	firstStep(t, e, "anna", annaPassword) // still on
	if err := e.Service.DisableTOTP(ctx, anna.ID, "", annaPassword, codes[3], client); err != nil {
		t.Fatalf("DisableTOTP with a recovery code: %v", err)
	}
	e.MustLogin(t, "anna", annaPassword)
	if err := e.Service.DisableTOTP(ctx, anna.ID, "", annaPassword, now, client); !errors.Is(err, latchkey.ErrTOTPNotEnabled) {
		t.Errorf("DisableTOTP when off: %v, want ErrTOTPNotEnabled", err)
	}

	// The admin's removal, for a user who lost device and codes.
	enrol(t, e, anna, annaPassword)
	if err := e.Service.RemoveTOTP(ctx, as(anna), anna.ID); !errors.Is(err, latchkey.ErrNotAdmin) {
		t.Errorf("RemoveTOTP by a member: %v, want ErrNotAdmin", err)
	}
	if err := e.Service.RemoveTOTP(ctx, as(admin), "0190d6a0-0000-7000-8000-000000000000"); !errors.Is(err, latchkey.ErrUserNotFound) {
		t.Errorf("RemoveTOTP of an unknown user: %v, want ErrUserNotFound", err)
	}
	if err := e.Service.RemoveTOTP(ctx, as(admin), anna.ID); err != nil {
		t.Fatal(err)
	}
	e.MustLogin(t, "anna", annaPassword)
	if err := e.Service.RemoveTOTP(ctx, as(admin), anna.ID); err != nil {
		t.Errorf("RemoveTOTP when off: %v, want nil", err)
	}
	events := auditTypes(t, e, anna.ID)
	if events[latchkey.AuditTOTPEnabled] != 2 || events[latchkey.AuditTOTPDisabled] != 2 {
		t.Errorf("audit: %v, want 2 totp_enabled and 2 totp_disabled", events)
	}
}

// TestTOTPSecretsSealed: with a key-encryption key the stored secret is
// not the secret, and a database opened under another key refuses codes
// rather than accepting any.
func TestTOTPSecretsSealed(t *testing.T) {
	path := t.TempDir() + "/auth.db"
	kek := bytes.Repeat([]byte{7}, 32)
	e := latchkeytest.New(t, latchkeytest.Options{Path: path, Config: func(c *latchkey.Config) { c.EncryptionKey = kek }})
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, _ := enrol(t, e, anna, annaPassword)

	stored, err := e.Store.TOTP(t.Context(), anna.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !stored.Sealed || bytes.Contains(stored.Secret, raw) {
		t.Errorf("stored secret sealed=%v, contains the secret: %v", stored.Sealed, bytes.Contains(stored.Secret, raw))
	}
	tok := firstStep(t, e, "anna", annaPassword)
	if _, err := e.Service.LoginMFA(t.Context(), tok, code(t, secret, e.Clock.Now()), client); err != nil {
		t.Errorf("LoginMFA with a sealed secret: %v", err)
	}

	other := latchkeytest.New(t, latchkeytest.Options{Path: path, Config: func(c *latchkey.Config) {
		c.EncryptionKey = bytes.Repeat([]byte{8}, 32)
	}})
	// CheckSecrets finds it at start, as the server's start does.
	if err := e.Service.CheckSecrets(t.Context()); err != nil {
		t.Errorf("CheckSecrets under the key that sealed: %v", err)
	}
	if err := other.Service.CheckSecrets(t.Context()); !errors.Is(err, latchkey.ErrWrongEncryptionKey) {
		t.Errorf("CheckSecrets under another key: %v, want ErrWrongEncryptionKey", err)
	}
	none := latchkeytest.New(t, latchkeytest.Options{Path: path})
	if err := none.Service.CheckSecrets(t.Context()); !errors.Is(err, latchkey.ErrKeysSealed) {
		t.Errorf("CheckSecrets without a key: %v, want ErrKeysSealed", err)
	}
	other.Clock.Advance(e.Clock.Now().Sub(other.Clock.Now()) + 30*time.Second)
	tok = firstStep(t, other, "anna", annaPassword)
	if _, err := other.Service.LoginMFA(t.Context(), tok, code(t, secret, other.Clock.Now()), client); !errors.Is(err, latchkey.ErrWrongEncryptionKey) {
		t.Errorf("LoginMFA under another key-encryption key: %v, want ErrWrongEncryptionKey", err)
	}
}

// TestTOTPSecretSealedAfterKeyIsSet: a secret enrolled before a
// key-encryption key was set is sealed at its first use under one, and
// keeps working.
func TestTOTPSecretSealedAfterKeyIsSet(t *testing.T) {
	path := t.TempDir() + "/auth.db"
	before := latchkeytest.New(t, latchkeytest.Options{Path: path})
	anna := before.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	secret, _ := enrol(t, before, anna, annaPassword)
	if st, _ := before.Store.TOTP(t.Context(), anna.ID); st.Sealed {
		t.Fatal("sealed without a key-encryption key")
	}

	after := latchkeytest.New(t, latchkeytest.Options{Path: path, Config: func(c *latchkey.Config) { c.EncryptionKey = bytes.Repeat([]byte{7}, 32) }})
	after.Clock.Advance(before.Clock.Now().Sub(after.Clock.Now()))
	for range 2 {
		tok := firstStep(t, after, "anna", annaPassword)
		if _, err := after.Service.LoginMFA(t.Context(), tok, code(t, secret, after.Clock.Now()), client); err != nil {
			t.Fatalf("LoginMFA: %v", err)
		}
		st, err := after.Store.TOTP(t.Context(), anna.ID)
		if err != nil || !st.Sealed {
			t.Fatalf("after a sign-in under a key-encryption key: sealed=%v, %v", st.Sealed, err)
		}
		after.Clock.Advance(30 * time.Second)
	}
}

// auditTypes counts the user's audit events by type.
func auditTypes(tb testing.TB, e *latchkeytest.Env, userID string) map[latchkey.AuditType]int {
	tb.Helper()
	events, _, err := e.Service.ListAudit(tb.Context(), latchkey.Operator(), latchkey.AuditQuery{UserID: userID, Limit: latchkey.MaxPageSize})
	if err != nil {
		tb.Fatal(err)
	}
	n := map[latchkey.AuditType]int{}
	for _, ev := range events {
		n[ev.Type]++
	}
	return n
}

// enableHookStore runs beforeEnable when a confirmation reaches the store:
// after its code was checked against the pending secret.
type enableHookStore struct {
	latchkey.Store
	beforeEnable func()
}

func (h *enableHookStore) EnableTOTP(ctx context.Context, id string, secret []byte, at time.Time, step int64, recovery [][]byte) error {
	if h.beforeEnable != nil {
		h.beforeEnable()
	}
	return h.Store.EnableTOTP(ctx, id, secret, at, step, recovery)
}

// TestConfirmRacingARestart: a confirmation whose enrolment was started
// again (a second tab) while its code was checked turns nothing on; the
// newest enrolment stays pending and confirms with its own code. Without
// any enrolment, a confirmation is refused.
func TestConfirmRacingARestart(t *testing.T) {
	hook := &enableHookStore{}
	e := newTestService(t, func(c *latchkey.Config) { hook.Store = c.Store; c.Store = hook })
	ctx := t.Context()
	anna := e.MustUser(t, "anna", annaPassword, latchkey.RoleMember)
	var verr *latchkey.ValidationError
	if _, err := e.Service.ConfirmTOTP(ctx, anna.ID, "", "123456", client); !errors.As(err, &verr) || verr.Field != "code" {
		t.Errorf("ConfirmTOTP with nothing pending: %v, want a ValidationError on code", err)
	}

	first, err := e.Service.StartTOTP(ctx, anna.ID, "", annaPassword, client)
	if err != nil {
		t.Fatal(err)
	}
	var second *latchkey.TOTPEnrolment
	hook.beforeEnable = func() {
		hook.beforeEnable = nil
		if second, err = e.Service.StartTOTP(ctx, anna.ID, "", annaPassword, client); err != nil {
			t.Error(err)
		}
	}
	if _, err := e.Service.ConfirmTOTP(ctx, anna.ID, "", code(t, first.Secret, e.Clock.Now()), client); !errors.As(err, &verr) || verr.Field != "code" {
		t.Fatalf("a confirmation overtaken by a restart: %v, want a ValidationError on code", err)
	}
	if on, _, _ := e.Service.TOTPStatus(ctx, anna.ID); on {
		t.Fatal("two-step sign-in is on with a secret that was replaced")
	}
	if _, err := e.Service.ConfirmTOTP(ctx, anna.ID, "", code(t, second.Secret, e.Clock.Now()), client); err != nil {
		t.Errorf("confirming the newest enrolment: %v", err)
	}
}
