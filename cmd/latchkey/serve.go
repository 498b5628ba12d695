package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/postgres"
	"github.com/latchkey-dev/latchkey/redis"
	"github.com/latchkey-dev/latchkey/server"
	"github.com/latchkey-dev/latchkey/sqlite"
)

func cmdServe(ctx context.Context, args []string, e env) error {
	cfg, _, err := loadConfig(serveCmd, args, e, nil)
	if err != nil {
		return err
	}
	logger, closeLog := newServerLogger(e.stderr, cfg.LogLevel)
	defer closeLog()
	// Listening comes first: with port 0, the issuer is known only then.
	ln, err := listen("LATCHKEY_ADDR", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	cfg.listenedOn(ln.Addr())
	if err := startMetrics(ctx, cfg, logger); err != nil {
		return err
	}
	auth, err := newAuth(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer auth.close()
	releaseStartupMemory()
	if e.ready != nil {
		e.ready(map[string]string{"auth": ln.Addr().String()})
	}
	return serveUntilDone(ctx, logger.With("server", "auth"), ln, auth.handler)
}

// authServer is the assembled auth server and what must be closed after it.
type authServer struct {
	svc     *latchkey.Service
	handler http.Handler
	close   func()
}

// releaseStartupMemory gives back to the OS what starting the auth server
// hashed with: the unknown-user decoy and any configured or demo user's
// password, 19 MiB of argon2id memory each by default, garbage now, which
// the runtime would keep for the next hash and an idle server would hold
// for minutes. It is a third of the idle server's RSS (docs/benchmarks.md,
// "Server memory").
func releaseStartupMemory() { debug.FreeOSMemory() }

func newAuth(ctx context.Context, cfg *config, logger *slog.Logger) (*authServer, error) {
	store, err := openStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	var limiter latchkey.Limiter
	closeLimiter := func() {}
	if cfg.RedisURL != "" {
		lim, err := newRedisLimiter(ctx, cfg.RedisURL, logger)
		if err != nil {
			store.Close()
			return nil, err
		}
		limiter, closeLimiter = lim, func() { lim.Close() }
	}
	audit := latchkey.NewAuditLog(store, logger, nil)
	if cfg.metrics != nil {
		audit.Observe(cfg.metrics.Audit)
	}
	svc, keys, err := newService(ctx, cfg, store, limiter, audit, logger)
	if err != nil {
		closeLimiter()
		store.Close()
		return nil, err
	}
	if cfg.AdminUsername != "" {
		created, err := svc.EnsureUser(ctx, cfg.AdminUsername, cfg.AdminPassword, latchkey.RoleAdmin)
		if err != nil {
			closeLimiter()
			store.Close()
			return nil, fmt.Errorf("create admin %s: %w", cfg.AdminUsername, err)
		}
		if created {
			logger.Info("created admin user", "username", cfg.AdminUsername)
		}
	}
	h, err := server.New(server.Config{Service: svc, Keys: keys, Logger: logger.With("server", "auth"),
		TrustedProxies: cfg.TrustedProxies, Metrics: cfg.metrics,
		BooksURL: cfg.BooksURL, CORSOrigins: cfg.CORSOrigins, CookieSecure: cfg.CookieSecure})
	if err != nil {
		closeLimiter()
		store.Close()
		return nil, err
	}
	if cfg.metrics != nil {
		cfg.metrics.Keys(keys)
	}
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	background.Go(func() {
		sweepSessions(bgCtx, sweepInterval, svc.SweepSessions, logger.With("sweep", "expired sessions"))
	})
	// Rotations made by another replica or the CLI are in force here
	// within keyRefresh.
	background.Go(func() { keys.Run(bgCtx, keyRefresh) })
	// Audit events are stored off the request path and flushed when Run
	// ends, before the store closes.
	background.Go(func() { audit.Run(bgCtx, auditFlush) })
	background.Go(func() {
		sweepSessions(bgCtx, sweepInterval, func(ctx context.Context) (int, error) {
			return audit.Purge(ctx, cfg.AuditRetention)
		}, logger.With("sweep", "audit events past retention"))
	})
	return &authServer{svc: svc, handler: h, close: func() {
		// A sweep, key refresh or audit flush in progress finishes before
		// its store goes away.
		stopBackground()
		background.Wait()
		closeLimiter()
		store.Close()
	}}, nil
}

// keyRefresh is how often the auth server rereads its signing keys, and
// auditFlush how often it stores the audit events recorded meanwhile.
const (
	keyRefresh = 2 * time.Second
	auditFlush = 250 * time.Millisecond
)

// newRedisLimiter connects the shared login throttle. Redis that answers
// with an error (a wrong password, a database index it does not have) is
// a configuration mistake that no wait will mend: the start stops. Redis
// that does not answer at all is an outage, and an outage of the cache
// must not keep the auth service down: the limiter starts on its
// in-process fallback, with its one warning, as when Redis goes away
// later, and uses Redis once it answers (docs/decisions.md).
func newRedisLimiter(ctx context.Context, url string, logger *slog.Logger) (*redis.Limiter, error) {
	lim, err := redis.New(redis.Config{URL: url, Logger: logger})
	if err != nil {
		return nil, usageErr("LATCHKEY_REDIS_URL: %v", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = lim.Ping(pctx)
	if _, answered := errors.AsType[goredis.Error](err); answered {
		lim.Close()
		return nil, usageErr("LATCHKEY_REDIS_URL: %v", err)
	}
	if err != nil {
		// A call that fails is what switches the limiter to its fallback
		// (and logs its warning); Reset of a key nobody uses is one that
		// counts nothing, so no login pays for finding Redis down.
		lim.Reset(ctx, "startup probe")
	}
	return lim, nil
}

// newService loads the keys (generating one on first start) and builds the
// Service from the configuration.
func newService(ctx context.Context, cfg *config, store latchkey.Store, limiter latchkey.Limiter, audit *latchkey.AuditLog, logger *slog.Logger) (*latchkey.Service, *latchkey.KeyRing, error) {
	var keys *latchkey.KeyRing
	var err error
	if cfg.Secret != nil {
		keys, err = latchkey.SharedSecretKeyRing(cfg.Secret, cfg.PreviousSecret)
	} else {
		keys, err = latchkey.NewKeyRing(ctx, latchkey.KeyRingConfig{
			Store: store, Alg: cfg.SigningAlg, AccessTTL: cfg.AccessTTL, Logger: logger,
			Rotation: cfg.KeyRotation, EncryptionKey: cfg.EncryptionKey, Audit: audit,
		})
		if errors.Is(err, latchkey.ErrKeysSealed) || errors.Is(err, latchkey.ErrWrongEncryptionKey) {
			return nil, nil, usageErr("LATCHKEY_KEY_ENCRYPTION_KEY: %v", err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	svc, err := latchkey.NewService(latchkey.Config{
		Store:              store,
		Limiter:            limiter,
		Signer:             keys,
		Logger:             logger,
		Audit:              audit,
		Argon2:             cfg.PasswordHash,
		Issuer:             cfg.Issuer,
		Audience:           cfg.Audience,
		AccessTTL:          cfg.AccessTTL,
		RefreshIdleTTL:     cfg.RefreshIdleTTL,
		SessionMaxAge:      cfg.SessionMaxAge,
		ReuseGrace:         cfg.ReuseGrace,
		RegistrationClosed: !cfg.RegistrationOpen,
		EncryptionKey:      cfg.EncryptionKey,
	})
	if err != nil {
		return nil, nil, err
	}
	// In shared-secret mode no signing key is sealed to catch a wrong
	// key-encryption key at start; sealed TOTP secrets are checked here.
	if err := svc.CheckSecrets(ctx); errors.Is(err, latchkey.ErrKeysSealed) || errors.Is(err, latchkey.ErrWrongEncryptionKey) {
		return nil, nil, usageErr("LATCHKEY_KEY_ENCRYPTION_KEY: %v", err)
	} else if err != nil {
		return nil, nil, err
	}
	return svc, keys, nil
}

// openStore opens the auth database named by LATCHKEY_DATABASE_URL. A
// failure is a configuration error: the start stops with exit code 2.
func openStore(ctx context.Context, dbURL string) (latchkey.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var st latchkey.Store
	var err error
	if strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://") {
		st, err = postgres.Open(ctx, postgres.Config{URL: dbURL})
	} else {
		st, err = sqlite.Open(ctx, sqlitePath(dbURL))
	}
	if err != nil {
		return nil, usageErr("LATCHKEY_DATABASE_URL: %v", err)
	}
	return st, nil
}

// sweepInterval is how often the auth server deletes the sessions that
// expired more than latchkey.SessionRetention ago.
const sweepInterval = time.Hour

// sweepSessions runs sweep every interval until ctx is done, so that the
// session table holds only what can still be used or recognised as reuse
// (and the audit table only what LATCHKEY_AUDIT_RETENTION keeps). A failed
// sweep is logged and retried at the next tick: the rows it leaves are
// dead, only kept longer. logger names what is swept.
func sweepSessions(ctx context.Context, interval time.Duration, sweep func(context.Context) (int, error), logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil {
				return // a tick that raced the cancellation starts nothing
			}
			n, err := sweep(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				logger.Warn("sweep failed", "err", err)
			case n > 0:
				logger.Info("swept", "count", n)
			}
		}
	}
}

func listen(variable, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usageErr("%s: %v", variable, err)
	}
	return ln, nil
}

// Server timeouts: slow clients cannot hold connections open, and no
// request takes longer than a login's argon2id under load.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 15 * time.Second
)

// serveUntilDone serves h on ln until ctx is cancelled, then stops
// accepting and waits for requests in flight to finish.
func serveUntilDone(ctx context.Context, logger *slog.Logger, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
