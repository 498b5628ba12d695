package latchkey

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Login throttling defaults. Per username, ten wrong passwords in a row are
// allowed (a user who mistypes a few times never notices), then one more
// every five minutes: about a dozen guesses an hour against one account.
// Per client address, thirty attempts, then one every ten seconds, across
// all usernames, which slows spraying one password over many accounts while
// leaving room for a small office behind one NAT address.
var (
	DefaultLoginRatePerUser = Rate{Burst: 10, Every: 5 * time.Minute}
	DefaultLoginRatePerIP   = Rate{Burst: 30, Every: 10 * time.Second}
)

// Login checks a username and password and starts a session.
//
// Unknown users, wrong passwords and disabled users all get
// ErrInvalidCredentials after the same argon2id work. Too many attempts for
// the username or from the client's address get a *RateLimitedError before
// any password is hashed.
func (s *Service) Login(ctx context.Context, username, password string, c Client) (*TokenPair, error) {
	ipKey, userKey := loginKeys(username, c)
	if err := s.takeAttempt(ctx, ipKey, userKey, c, "", "", "username "+quoteName(username)); err != nil {
		return nil, err
	}
	// A login the password gate would turn away is turned away before its
	// database lookup: a flood beyond the gate's queue, which 256 clients
	// on one core are, would otherwise cost a query per refusal.
	if s.gate.full() {
		return nil, s.unthrottle(ctx, ipKey, userKey, ErrBusy)
	}

	u, err := s.cfg.Store.UserByUsername(ctx, username)
	switch {
	case errors.Is(err, ErrNotFound):
		if _, _, err := s.verifyGated(ctx, s.dummyHash, password, ipKey, userKey); err != nil {
			return nil, err
		}
		s.audit(ctx, AuditLoginFailed, c, "", "", "unknown username "+quoteName(username))
		return nil, ErrInvalidCredentials
	case err != nil:
		return nil, fmt.Errorf("login: %w", err)
	}
	ok, rehash, err := s.verifyGated(ctx, u.PasswordHash, password, ipKey, userKey)
	if err != nil {
		return nil, fmt.Errorf("login: verify password of user %s: %w", u.ID, err)
	}
	if !ok || u.Disabled {
		why := "wrong password"
		if ok {
			why = "account disabled"
		}
		s.audit(ctx, AuditLoginFailed, c, u.ID, "", why)
		return nil, ErrInvalidCredentials
	}
	s.passed(ctx, ipKey, userKey)
	// The login succeeds even when the upgrade of its hash has to wait
	// for the next one, busy or failing.
	if rehash {
		var hash string
		err := s.gate.do(ctx, func() { hash = HashPassword(password, s.cfg.Argon2) })
		if err == nil {
			_, err = s.cfg.Store.SetPassword(ctx, u.ID, hash, nil)
		}
		if err != nil {
			s.cfg.Logger.WarnContext(ctx, "upgrade password hash", "user_id", u.ID, "err", err)
		}
	}
	if err := s.requireSecondFactor(ctx, u); err != nil {
		return nil, err
	}
	pair, sid, err := s.startSession(ctx, u, c)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditLoginSucceeded, c, u.ID, sid, "")
	return pair, nil
}

// loginKeys are the limiter keys of a password check: the client's
// address and the username (either may be empty).
func loginKeys(username string, c Client) (ipKey, userKey string) {
	if c.IP != "" {
		ipKey = "login:ip:" + c.IP
	}
	// A name that breaks the username rule cannot exist; it is throttled by
	// address only, so nobody can make the limiter store megabyte keys.
	if ValidateUsername(username) == nil {
		userKey = "login:user:" + strings.ToLower(username)
	}
	return ipKey, userKey
}

// passed is what a right password does to the throttle. Only failures
// count: it ends the username's run of failures and gives back the
// address's attempt, so many people behind one address (or a test suite
// on loopback) can log in freely.
func (s *Service) passed(ctx context.Context, ipKey, userKey string) {
	if err := s.cfg.Limiter.Reset(ctx, userKey); err != nil {
		s.cfg.Logger.WarnContext(ctx, "reset login limiter", "err", err)
	}
	if ipKey != "" {
		if err := s.cfg.Limiter.Refund(ctx, ipKey, s.cfg.LoginRatePerIP); err != nil {
			s.cfg.Logger.WarnContext(ctx, "refund login limiter", "err", err)
		}
	}
}

// checkPassword is the password check of the account actions (password
// change, enrolling and removing a second factor): the same argon2id gate
// and throttle as Login, so a stolen access token cannot be used to guess
// the password faster here than at /login. action names the step for the
// audit log.
func (s *Service) checkPassword(ctx context.Context, u *User, password, sid string, c Client, action string) error {
	ipKey, userKey := loginKeys(u.Username, c)
	if err := s.takeAttempt(ctx, ipKey, userKey, c, u.ID, sid, action); err != nil {
		return err
	}
	ok, _, err := s.verifyGated(ctx, u.PasswordHash, password, ipKey, userKey)
	if err != nil {
		return fmt.Errorf("%s: verify password of user %s: %w", action, u.ID, err)
	}
	if !ok {
		s.audit(ctx, AuditLoginFailed, c, u.ID, sid, "wrong password at "+action)
		return ErrInvalidCredentials
	}
	s.passed(ctx, ipKey, userKey)
	return nil
}

// quoteName quotes a username for an audit detail. A name that breaks the
// username rule is not repeated: it may be a password typed in the wrong
// field.
func quoteName(name string) string {
	if ValidateUsername(name) != nil {
		return "(not a valid username)"
	}
	return strconv.Quote(name)
}

// takeAttempt is throttle with the refusal recorded in the audit log,
// what saying whose attempt it was.
func (s *Service) takeAttempt(ctx context.Context, ipKey, userKey string, c Client, userID, sid, what string) error {
	err := s.throttle(ctx, ipKey, userKey)
	var rl *RateLimitedError
	if errors.As(err, &rl) {
		s.auditThrottled(ctx, c, userID, sid, what, rl, ipKey != "" && rl.limiter == ipKey)
	}
	return err
}

// auditThrottled records a throttle's refusal of what. A refused client
// can ask again at once, as often as it likes, so refusals are recorded
// once a minute with their count (AuditLog.RecordRepeated), keyed by the
// allowance that ran out and the client's address: an address's own
// allowance counts its refusals whatever the username (a spray of names
// from one address is one record a minute), and a username's or a user's
// counts them per address (a spread of addresses against one account is
// one record a minute per address).
func (s *Service) auditThrottled(ctx context.Context, c Client, userID, sid, what string, rl *RateLimitedError, byAddress bool) {
	if byAddress {
		what += "; too many from this address"
	}
	detail := what + "; retry after " + rl.RetryAfter.Round(time.Second).String()
	s.cfg.Audit.RecordRepeated(ctx, AuditEvent{
		Type: AuditLoginThrottled, UserID: userID, SessionID: sid, IP: c.IP, UserAgent: c.UserAgent, Detail: detail,
	}, rl.limiter+"\x00"+c.IP)
}

// verifyGated is VerifyPassword through the password gate. A check the
// gate turns away (busy, or the client gone) gives back the attempts
// throttle spent and returns the gate's error.
func (s *Service) verifyGated(ctx context.Context, hash, password, ipKey, userKey string) (ok, rehash bool, err error) {
	if gateErr := s.gate.do(ctx, func() { ok, rehash, err = VerifyPassword(hash, password, s.cfg.Argon2) }); gateErr != nil {
		return false, false, s.unthrottle(ctx, ipKey, userKey, gateErr)
	}
	return ok, rehash, err
}

// throttle spends one attempt of the address's and the username's
// allowances (either key may be empty). If either is exhausted it spends
// nothing more and returns a *RateLimitedError with the longer wait.
func (s *Service) throttle(ctx context.Context, ipKey, userKey string) error {
	var wait time.Duration
	if ipKey != "" {
		w, err := s.cfg.Limiter.Take(ctx, ipKey, s.cfg.LoginRatePerIP)
		if err != nil {
			return fmt.Errorf("login limiter: %w", err)
		}
		wait = w
	}
	limiter := ipKey
	if wait == 0 && userKey != "" {
		limiter = userKey
		w, err := s.cfg.Limiter.Take(ctx, userKey, s.cfg.LoginRatePerUser)
		if err != nil {
			return fmt.Errorf("login limiter: %w", err)
		}
		if w > 0 && ipKey != "" {
			// The address's attempt was not used after all.
			if err := s.cfg.Limiter.Refund(ctx, ipKey, s.cfg.LoginRatePerIP); err != nil {
				return fmt.Errorf("login limiter: %w", err)
			}
		}
		wait = w
	}
	if wait > 0 {
		return &RateLimitedError{RetryAfter: wait, Attempts: "login attempts", limiter: limiter}
	}
	return nil
}

// unthrottle gives back the attempts throttle spent on a login that was
// turned away before its password was checked, and returns err.
func (s *Service) unthrottle(ctx context.Context, ipKey, userKey string, err error) error {
	if ipKey != "" {
		if rerr := s.cfg.Limiter.Refund(ctx, ipKey, s.cfg.LoginRatePerIP); rerr != nil {
			s.cfg.Logger.WarnContext(ctx, "refund login limiter", "err", rerr)
		}
	}
	if userKey != "" {
		if rerr := s.cfg.Limiter.Refund(ctx, userKey, s.cfg.LoginRatePerUser); rerr != nil {
			s.cfg.Logger.WarnContext(ctx, "refund login limiter", "err", rerr)
		}
	}
	return err
}
