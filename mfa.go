package latchkey

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Second-factor parameters. The TOTP ones are RFC 6238's defaults, the
// only ones every authenticator app reads correctly.
const (
	// MFAChallengeTTL is how long the mfaToken of a login's first step
	// can be exchanged for a session.
	MFAChallengeTTL = 5 * time.Minute

	// RecoveryCodeCount is how many recovery codes an enrolment gets.
	RecoveryCodeCount = 10

	totpPeriod     = 30 // seconds per step
	totpSkew       = 1  // steps accepted either side of now
	totpSecretSize = 20 // bytes: 160 bits, RFC 4226's recommended length

	// A recovery code has 80 bits from the CSPRNG, so a plain SHA-256 is
	// enough to store it: a copy of the database cannot be searched for
	// the codes any faster than they can be guessed online.
	recoveryCodeBytes = 10
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// codeEncoding writes secrets and recovery codes in RFC 4648 base32, the
// alphabet authenticator apps expect and people can read aloud.
var codeEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// errNoEnrolment answers a confirmation without a pending enrolment.
var errNoEnrolment = invalid("code", "no enrolment is pending: start one first")

// TOTPEnrolment is what StartTOTP returns: the secret for typing in by
// hand and the otpauth URL that a QR code carries.
type TOTPEnrolment struct {
	Secret string
	URL    string
}

// StartTOTP begins a TOTP enrolment after checking the user's password
// (throttled as a login). The enrolment stays pending, and login keeps
// asking for the password alone, until ConfirmTOTP sees a first code: a
// user who scans nothing is not locked out. Starting again replaces a
// pending enrolment; a user with TOTP on gets ErrTOTPEnabled.
func (s *Service) StartTOTP(ctx context.Context, userID, sid, password string, c Client) (*TOTPEnrolment, error) {
	u, err := s.userByID(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("start totp: %w", err)
	}
	if err := s.checkPassword(ctx, u, password, sid, c, "two-step enrolment"); err != nil {
		return nil, err
	}
	secret := make([]byte, totpSecretSize)
	rand.Read(secret)
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      s.totpIssuer(),
		AccountName: u.Username,
		Period:      totpPeriod,
		Secret:      secret,
		Digits:      totpOpts.Digits,
		Algorithm:   totpOpts.Algorithm,
	})
	if err != nil {
		return nil, fmt.Errorf("start totp: %w", err)
	}
	t := &TOTP{UserID: u.ID, CreatedAt: s.now()}
	t.Secret, t.Sealed = s.sealTOTP(u.ID, secret)
	if err := s.cfg.Store.PutTOTP(ctx, t); errors.Is(err, ErrConflict) {
		return nil, ErrTOTPEnabled
	} else if err != nil {
		return nil, fmt.Errorf("start totp: %w", err)
	}
	return &TOTPEnrolment{Secret: key.Secret(), URL: key.URL()}, nil
}

// totpIssuer names this server in the authenticator app: the host of the
// issuer URL, without a port, since a colon would split the otpauth label.
func (s *Service) totpIssuer() string {
	if u, err := url.Parse(s.cfg.Issuer); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "Latchkey"
}

// ConfirmTOTP turns a pending enrolment on when code is the current code
// of its secret, and returns the recovery codes, which are shown once and
// stored only as hashes. The confirming code counts as used. Wrong codes
// are throttled per user like wrong passwords.
func (s *Service) ConfirmTOTP(ctx context.Context, userID, sid, code string, c Client) ([]string, error) {
	t, err := s.cfg.Store.TOTP(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, errNoEnrolment
	} else if err != nil {
		return nil, fmt.Errorf("confirm totp: %w", err)
	}
	if t.Enabled() {
		return nil, ErrTOTPEnabled
	}
	if err := s.throttleCodes(ctx, userID, sid, c); err != nil {
		return nil, err
	}
	secret, err := s.openTOTP(t)
	if err != nil {
		return nil, fmt.Errorf("confirm totp: %w", err)
	}
	step, ok := matchTOTP(secret, code, s.now())
	if !ok {
		s.audit(ctx, AuditMFAFailed, c, userID, sid, "wrong code at two-step enrolment")
		return nil, invalid("code", "is not the code your app shows now; check the time on your device")
	}
	codes, hashes := newRecoveryCodes()
	if err := s.cfg.Store.EnableTOTP(ctx, userID, t.Secret, s.now(), step, hashes); errors.Is(err, ErrConflict) {
		// Enabled meanwhile, or restarted with a new secret (a second
		// tab): this code was checked against a secret no longer pending.
		if now, rerr := s.cfg.Store.TOTP(ctx, userID); rerr == nil && now.Enabled() {
			return nil, ErrTOTPEnabled
		}
		return nil, invalid("code", "two-step enrolment was started again meanwhile: scan the newest QR code")
	} else if errors.Is(err, ErrNotFound) {
		return nil, errNoEnrolment
	} else if err != nil {
		return nil, fmt.Errorf("confirm totp: %w", err)
	}
	s.passedCodes(ctx, userID)
	s.audit(ctx, AuditTOTPEnabled, c, userID, sid, fmt.Sprintf("%d recovery codes issued", len(codes)))
	return codes, nil
}

// DisableTOTP turns the user's second factor off. It takes the password
// and a code (an authenticator code or a recovery code, for the user who
// lost their phone), so that neither a stolen access token nor a stolen
// password alone can remove it.
func (s *Service) DisableTOTP(ctx context.Context, userID, sid, password, code string, c Client) error {
	u, err := s.userByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("disable totp: %w", err)
	}
	if err := s.checkPassword(ctx, u, password, sid, c, "two-step removal"); err != nil {
		return err
	}
	t, err := s.cfg.Store.TOTP(ctx, userID)
	if errors.Is(err, ErrNotFound) || err == nil && !t.Enabled() {
		return ErrTOTPNotEnabled
	} else if err != nil {
		return fmt.Errorf("disable totp: %w", err)
	}
	if _, err := s.checkCode(ctx, t, code, sid, c); err != nil {
		return err
	}
	if err := s.cfg.Store.DeleteTOTP(ctx, userID); errors.Is(err, ErrNotFound) {
		return ErrTOTPNotEnabled // removed meanwhile
	} else if err != nil {
		return fmt.Errorf("disable totp: %w", err)
	}
	s.audit(ctx, AuditTOTPDisabled, c, userID, sid, "by the user")
	return nil
}

// RemoveTOTP is the admin's (and the operator's) removal of a user's
// second factor, for a user who lost both their device and their
// recovery codes: they sign in with the password alone again. Removing
// none is not an error.
func (s *Service) RemoveTOTP(ctx context.Context, a Actor, id string) error {
	if err := s.requireAdmin(ctx, a); err != nil {
		return err
	}
	if _, err := s.userByID(ctx, id); err != nil {
		return fmt.Errorf("remove totp: %w", err)
	}
	err := s.cfg.Store.DeleteTOTP(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove totp: %w", err)
	}
	s.audit(ctx, AuditTOTPDisabled, a.Client, id, a.SessionID, a.by())
	return nil
}

// TOTPStatus says whether the user has two-step sign-in on and how many
// recovery codes are left, for the page.
func (s *Service) TOTPStatus(ctx context.Context, userID string) (enabled bool, codesLeft int, err error) {
	t, err := s.cfg.Store.TOTP(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("totp status: %w", err)
	}
	if !t.Enabled() {
		return false, 0, nil
	}
	n, err := s.cfg.Store.RecoveryCodesLeft(ctx, userID)
	if err != nil {
		return false, 0, fmt.Errorf("totp status: %w", err)
	}
	return true, n, nil
}

// requireSecondFactor is the end of a login's first step: a user with
// TOTP on gets an *MFARequiredError holding a new single-use mfaToken
// instead of a session.
func (s *Service) requireSecondFactor(ctx context.Context, u *User) error {
	t, err := s.cfg.Store.TOTP(ctx, u.ID)
	if errors.Is(err, ErrNotFound) || err == nil && !t.Enabled() {
		return nil
	}
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	tok, hash := newRefreshToken() // same form and entropy as a refresh token
	now := s.now()
	if err := s.cfg.Store.CreateMFAChallenge(ctx, &MFAChallenge{
		Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(MFAChallengeTTL),
	}); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	return &MFARequiredError{Token: tok}
}

// LoginMFA is a login's second step: the mfaToken of the first and a
// TOTP code or a recovery code. An unknown, expired or used mfaToken is
// ErrInvalidGrant; so is one whose user was disabled or lost their second
// factor since, since the first step's answer no longer holds. A wrong
// code is ErrInvalidCode and leaves the mfaToken usable until it expires;
// wrong codes are throttled per user. The ErrInvalidGrant is
// ErrInvalidMFAToken, so the client is told to start again.
func (s *Service) LoginMFA(ctx context.Context, mfaToken, code string, c Client) (*TokenPair, error) {
	if !wellFormedRefreshToken(mfaToken) {
		return nil, ErrInvalidMFAToken
	}
	hash := hashToken(mfaToken)
	ch, err := s.cfg.Store.MFAChallenge(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidMFAToken
	} else if err != nil {
		return nil, fmt.Errorf("login mfa: %w", err)
	}
	if !s.now().Before(ch.ExpiresAt) {
		return nil, ErrInvalidMFAToken
	}
	u, err := s.cfg.Store.UserByID(ctx, ch.UserID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("login mfa: %w", err)
	}
	var t *TOTP
	if err == nil && !u.Disabled {
		t, err = s.cfg.Store.TOTP(ctx, u.ID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("login mfa: %w", err)
		}
	}
	if t == nil || !t.Enabled() {
		s.dropChallenge(ctx, hash)
		if u != nil {
			s.audit(ctx, AuditLoginFailed, c, u.ID, "", "second step refused: account disabled or two-step sign-in removed")
		}
		return nil, ErrInvalidMFAToken
	}
	// Claiming the challenge before the code is checked makes it single
	// use: of two requests racing with one mfaToken, one goes on and the
	// other spends no code.
	if err := s.cfg.Store.DeleteMFAChallenge(ctx, hash); errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidMFAToken
	} else if err != nil {
		return nil, fmt.Errorf("login mfa: %w", err)
	}
	how, err := s.checkCode(ctx, t, code, "", c)
	if err != nil {
		// A wrong code, a throttled one or a failed check leaves the
		// mfaToken usable until it expires.
		s.restoreChallenge(ctx, ch, u)
		return nil, err
	}
	pair, sid, err := s.startSession(ctx, u, c)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditLoginSucceeded, c, u.ID, sid, "second factor: "+how)
	return pair, nil
}

// restoreChallenge puts back a challenge claimed for a code that failed.
// A password change or reset deletes the user's challenges, but not one
// that was claimed at that moment; so the user is read again after the
// put-back, and a password that changed since the claim (or a disable)
// deletes it once more. Whichever order the two writes take, the
// challenge does not outlive the change.
func (s *Service) restoreChallenge(ctx context.Context, ch *MFAChallenge, before *User) {
	if err := s.cfg.Store.CreateMFAChallenge(ctx, ch); err != nil {
		s.cfg.Logger.WarnContext(ctx, "restore mfa challenge", "err", err)
		return
	}
	now, err := s.cfg.Store.UserByID(ctx, before.ID)
	if err != nil || now.PasswordHash != before.PasswordHash || now.Disabled {
		s.dropChallenge(ctx, ch.Hash)
	}
}

func (s *Service) dropChallenge(ctx context.Context, hash []byte) {
	if err := s.cfg.Store.DeleteMFAChallenge(ctx, hash); err != nil && !errors.Is(err, ErrNotFound) {
		s.cfg.Logger.WarnContext(ctx, "delete mfa challenge", "err", err)
	}
}

// checkCode accepts code as a TOTP code of t's secret (within one step
// of now, and of a later step than any accepted before) or as one of the
// user's unused recovery codes, spending it either way, and says which it
// was. Attempts are throttled per user.
func (s *Service) checkCode(ctx context.Context, t *TOTP, code, sid string, c Client) (string, error) {
	if err := s.throttleCodes(ctx, t.UserID, sid, c); err != nil {
		return "", err
	}
	how, why, err := s.spendCode(ctx, t, code)
	if err != nil {
		return "", err
	}
	if why != "" {
		s.audit(ctx, AuditMFAFailed, c, t.UserID, sid, why)
		return "", ErrInvalidCode
	}
	s.passedCodes(ctx, t.UserID)
	if how == "recovery code" {
		left, err := s.cfg.Store.RecoveryCodesLeft(ctx, t.UserID)
		if err != nil {
			s.cfg.Logger.WarnContext(ctx, "count recovery codes", "user_id", t.UserID, "err", err)
		}
		s.audit(ctx, AuditRecoveryCodeUsed, c, t.UserID, sid, fmt.Sprintf("%d recovery codes left", left))
	}
	return how, nil
}

// spendCode is checkCode without the throttle: it returns how the code
// was accepted, or why it was not.
func (s *Service) spendCode(ctx context.Context, t *TOTP, code string) (how, why string, err error) {
	code = strings.TrimSpace(code)
	if isDigits(code, int(totpOpts.Digits)) {
		secret, err := s.openTOTP(t)
		if err != nil {
			return "", "", fmt.Errorf("check code: %w", err)
		}
		step, ok := matchTOTP(secret, code, s.now())
		if !ok {
			return "", "wrong code", nil
		}
		// The step is spent in the database, so a code is accepted once
		// across every replica, and an older code after a newer one never.
		err = s.cfg.Store.UseTOTPStep(ctx, t.UserID, step)
		switch {
		case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
			return "", "code already used", nil
		case err != nil:
			return "", "", fmt.Errorf("check code: %w", err)
		}
		s.sealLater(ctx, t, secret)
		return "authenticator code", "", nil
	}
	norm, ok := normalizeRecoveryCode(code)
	if !ok {
		return "", "not a code", nil
	}
	err = s.cfg.Store.UseRecoveryCode(ctx, t.UserID, hashToken(norm), s.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return "", "wrong or used recovery code", nil
	case err != nil:
		return "", "", fmt.Errorf("check code: %w", err)
	}
	s.sealLater(ctx, t, t.Secret) // unsealed, or sealLater does nothing
	return "recovery code", "", nil
}

// mfaKey is the limiter key of a user's second-factor attempts. It is
// per user, not per username, and apart from the password's, so that a
// thief who has the password cannot reset the code count with it.
func mfaKey(userID string) string { return "mfa:user:" + userID }

func (s *Service) throttleCodes(ctx context.Context, userID, sid string, c Client) error {
	wait, err := s.cfg.Limiter.Take(ctx, mfaKey(userID), s.cfg.LoginRatePerUser)
	if err != nil {
		return fmt.Errorf("code limiter: %w", err)
	}
	if wait > 0 {
		rl := &RateLimitedError{RetryAfter: wait, Attempts: "second-factor codes", limiter: mfaKey(userID)}
		s.auditThrottled(ctx, c, userID, sid, "second-factor codes", rl, false)
		return rl
	}
	return nil
}

func (s *Service) passedCodes(ctx context.Context, userID string) {
	if err := s.cfg.Limiter.Reset(ctx, mfaKey(userID)); err != nil {
		s.cfg.Logger.WarnContext(ctx, "reset code limiter", "err", err)
	}
}

// matchTOTP returns the time step whose code equals code, looking at the
// step of now and one either side (a phone's clock a little off, a code
// typed as it changed).
func matchTOTP(secret []byte, code string, now time.Time) (int64, bool) {
	b32 := codeEncoding.EncodeToString(secret)
	step := now.Unix() / totpPeriod
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		want, err := totp.GenerateCodeCustom(b32, time.Unix((step+d)*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step + d, true
		}
	}
	return 0, false
}

// TOTPCode returns the code of secret (base32, as StartTOTP returns it)
// at t: what an authenticator app shows. Tests use it, and Go programs
// that sign in as a user with TOTP; the server never needs it.
func TOTPCode(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, totpOpts)
}

// newRecoveryCodes returns RecoveryCodeCount codes for the user to keep,
// written xxxx-xxxx-xxxx-xxxx, and the hashes to store.
func newRecoveryCodes() ([]string, [][]byte) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([][]byte, RecoveryCodeCount)
	for i := range codes {
		b := make([]byte, recoveryCodeBytes)
		rand.Read(b)
		raw := strings.ToLower(codeEncoding.EncodeToString(b)) // 16 characters
		codes[i] = raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
		hashes[i] = hashToken(raw)
	}
	return codes, hashes
}

// normalizeRecoveryCode accepts a recovery code as people type it: any
// case, with or without the dashes and spaces.
func normalizeRecoveryCode(code string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToLower(code) {
		switch {
		case r == '-' || r == ' ':
		case 'a' <= r && r <= 'z', '2' <= r && r <= '7':
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if b.Len() != 16 {
		return "", false
	}
	return b.String(), true
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// sealLater seals a secret enrolled before the key-encryption key was
// set, at its first use since, as the KeyRing seals signing keys stored
// before it. The sign-in goes on if that write fails; the next one tries
// again.
func (s *Service) sealLater(ctx context.Context, t *TOTP, secret []byte) {
	if t.Sealed || s.sealer == nil {
		return
	}
	sealed, _ := s.sealTOTP(t.UserID, secret)
	if err := s.cfg.Store.SealTOTP(ctx, t.UserID, sealed); err != nil && !errors.Is(err, ErrConflict) {
		s.cfg.Logger.WarnContext(ctx, "seal totp secret", "user_id", t.UserID, "err", err)
	}
}

// CheckSecrets opens one sealed TOTP secret, if any is stored, so that a
// missing or wrong key-encryption key stops the server's start, as it
// does for sealed signing keys, rather than failing a user's sign-in.
func (s *Service) CheckSecrets(ctx context.Context) error {
	t, err := s.cfg.Store.SealedTOTP(ctx)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check sealed secrets: %w", err)
	}
	_, err = s.openTOTP(t)
	return err
}

// totpSealLabel binds a sealed TOTP secret to its user.
const totpSealLabel = "latchkey totp secret v1\x00"

func (s *Service) sealTOTP(userID string, secret []byte) ([]byte, bool) {
	if s.sealer == nil {
		return secret, false
	}
	return s.sealer.seal(totpSealLabel+userID, secret), true
}

func (s *Service) openTOTP(t *TOTP) ([]byte, error) {
	if !t.Sealed {
		return t.Secret, nil
	}
	if s.sealer == nil {
		return nil, fmt.Errorf("totp secret of user %s: %w", t.UserID, ErrKeysSealed)
	}
	secret, err := s.sealer.open(totpSealLabel+t.UserID, t.Secret)
	if err != nil {
		return nil, fmt.Errorf("totp secret of user %s: %w", t.UserID, err)
	}
	return secret, nil
}
