package latchkey

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// Defaults the contract sets for the lifetimes and the grace window.
const (
	DefaultAccessTTL      = 15 * time.Minute
	DefaultRefreshIdleTTL = 7 * 24 * time.Hour
	DefaultSessionMaxAge  = 30 * 24 * time.Hour
	DefaultReuseGrace     = 10 * time.Second
)

// Config configures a Service. Zero durations take the defaults above,
// except ReuseGrace, where zero means no grace.
type Config struct {
	Store   Store
	Limiter Limiter           // defaults to a MemoryLimiter on Now
	Signer  AccessTokenSigner // signs access tokens (a *KeyRing); required
	Logger  *slog.Logger      // defaults to discarding
	// Audit records security events (defaults to an AuditLog on Store and
	// Logger; run its Run in the background to store them promptly).
	Audit *AuditLog

	Issuer   string // iss; required
	Audience string // aud; required

	AccessTTL time.Duration
	// Leeway is the clock skew verifiers allow (default token.DefaultLeeway):
	// a token can outlive its expiry by this much, so the revocation feed
	// keeps entries for AccessTTL plus Leeway.
	Leeway         time.Duration
	RefreshIdleTTL time.Duration
	SessionMaxAge  time.Duration
	ReuseGrace     time.Duration

	// EncryptionKey, 32 bytes (LATCHKEY_KEY_ENCRYPTION_KEY), seals TOTP
	// secrets at rest as the KeyRing seals signing keys. Without it they
	// are stored as they are.
	EncryptionKey []byte

	// RegistrationClosed makes Register fail with ErrRegistrationClosed.
	RegistrationClosed bool

	Argon2           Argon2Params // defaults to DefaultArgon2
	LoginRatePerUser Rate         // defaults to DefaultLoginRatePerUser
	LoginRatePerIP   Rate         // defaults to DefaultLoginRatePerIP
	// RegisterRatePerIP defaults to DefaultRegisterRatePerIP.
	RegisterRatePerIP Rate

	// PasswordConcurrency bounds the argon2id hashes computed at once
	// (default GOMAXPROCS), and PasswordQueue the requests waiting for one
	// (default 32 per slot); past that, ErrBusy. Memory for hashing is
	// bounded by PasswordConcurrency × Argon2.Memory.
	PasswordConcurrency int
	PasswordQueue       int

	Now func() time.Time // defaults to time.Now
}

// AccessTokenSigner signs access tokens. A *KeyRing is one that follows
// key rotation; a *token.Signer signs with one fixed key.
type AccessTokenSigner interface {
	Sign(c *token.Claims) (string, error)
}

// Service applies Latchkey's rules on top of a Store. It is safe for
// concurrent use.
type Service struct {
	cfg Config
	// dummyHash is verified against when the username is unknown, so that
	// a login for a user who does not exist costs what a real one costs.
	dummyHash string
	gate      *passwordGate
	sealer    *sealer // nil without Config.EncryptionKey
}

// NewService validates cfg, fills its defaults and returns a Service.
func NewService(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("latchkey: Config.Store is required")
	case cfg.Signer == nil:
		return nil, errors.New("latchkey: Config.Signer is required")
	case cfg.Issuer == "":
		return nil, errors.New("latchkey: Config.Issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("latchkey: Config.Audience is required")
	case cfg.AccessTTL < 0, cfg.Leeway < 0, cfg.RefreshIdleTTL < 0, cfg.SessionMaxAge < 0, cfg.ReuseGrace < 0:
		return nil, errors.New("latchkey: negative duration in Config")
	case cfg.PasswordConcurrency < 0, cfg.PasswordQueue < 0:
		return nil, errors.New("latchkey: negative password concurrency or queue in Config")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = token.DefaultLeeway
	}
	if cfg.RefreshIdleTTL == 0 {
		cfg.RefreshIdleTTL = DefaultRefreshIdleTTL
	}
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = DefaultSessionMaxAge
	}
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2
	}
	if cfg.LoginRatePerUser == (Rate{}) {
		cfg.LoginRatePerUser = DefaultLoginRatePerUser
	}
	if cfg.LoginRatePerIP == (Rate{}) {
		cfg.LoginRatePerIP = DefaultLoginRatePerIP
	}
	if cfg.RegisterRatePerIP == (Rate{}) {
		cfg.RegisterRatePerIP = DefaultRegisterRatePerIP
	}
	if cfg.PasswordConcurrency == 0 {
		cfg.PasswordConcurrency = runtime.GOMAXPROCS(0)
	}
	if cfg.PasswordQueue == 0 {
		cfg.PasswordQueue = 32 * cfg.PasswordConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = NewAuditLog(cfg.Store, cfg.Logger, cfg.Now)
	}
	if cfg.Limiter == nil {
		// On the Service's clock, so that a test moving the clock moves
		// the throttle's refill too.
		lim := NewMemoryLimiter()
		lim.Now = cfg.Now
		cfg.Limiter = lim
	}
	sealer, err := newSealer(cfg.EncryptionKey)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg:       cfg,
		dummyHash: HashPassword(rand.Text(), cfg.Argon2),
		gate:      newPasswordGate(cfg.PasswordConcurrency, cfg.PasswordQueue, uint64(cfg.Argon2.Memory)<<10),
		sealer:    sealer,
	}, nil
}

// Now is the Service's clock (Config.Now), for the verifier of the
// server in front of it, so that both agree on what has expired.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// now is the Service's clock, in UTC and truncated to the microsecond so
// that every Store round-trips it exactly.
func (s *Service) now() time.Time { return stamp(s.cfg.Now()) }

// stamp is a time as the stores keep it: UTC, to the microsecond both
// backends hold.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// TokenPair is what Login and Refresh return.
type TokenPair struct {
	AccessToken  string
	RefreshToken string
	// ExpiresIn is the access token's lifetime.
	ExpiresIn time.Duration
}

// Client describes who is calling, for rate limiting, the session list an
// admin sees and the audit log.
type Client struct {
	IP        string
	UserAgent string
}

// maxUserAgent bounds what a client can make us store.
const maxUserAgent = 512

// Issuer is the iss of the access tokens the Service issues.
func (s *Service) Issuer() string { return s.cfg.Issuer }

// RefreshIdleTTL is how long a refresh token lives unused, the Max-Age
// of the browser's refresh cookie.
func (s *Service) RefreshIdleTTL() time.Duration { return s.cfg.RefreshIdleTTL }

// Audience is the aud of the access tokens the Service issues.
func (s *Service) Audience() string { return s.cfg.Audience }

// Audit is the Service's audit log.
func (s *Service) Audit() *AuditLog { return s.cfg.Audit }

// audit records an event about the client's request.
func (s *Service) audit(ctx context.Context, t AuditType, c Client, userID, sessionID, detail string) {
	s.cfg.Audit.Record(ctx, AuditEvent{Type: t, UserID: userID, SessionID: sessionID, IP: c.IP, UserAgent: c.UserAgent, Detail: detail})
}

// Ready reports whether the database answers; /readyz asks it.
func (s *Service) Ready(ctx context.Context) error { return s.cfg.Store.Ping(ctx) }
