package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/books"
	"github.com/latchkey-dev/latchkey/server"
	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/jwks"
	"github.com/latchkey-dev/latchkey/token/revocation"
)

func cmdBooks(ctx context.Context, args []string, e env) error {
	cfg, _, err := loadConfig(booksCmd, args, e, nil)
	if err != nil {
		return err
	}
	logger, closeLog := newServerLogger(e.stderr, cfg.LogLevel)
	defer closeLog()
	logger = logger.With("server", "books")
	if err := startMetrics(ctx, cfg, logger); err != nil {
		return err
	}
	keys, ready, err := booksKeys(cfg, nil)
	if err != nil {
		return err
	}
	b, err := newBooks(ctx, cfg, keys, ready, cfg.AuthURL, logger, false)
	if err != nil {
		return err
	}
	defer b.close()
	ln, err := listen("LATCHKEY_BOOKS_ADDR", cfg.BooksAddr)
	if err != nil {
		return err
	}
	if e.ready != nil {
		e.ready(map[string]string{"books": ln.Addr().String()})
	}
	return serveUntilDone(ctx, logger, ln, b.handler)
}

// booksKeys is where the books server gets verification keys: the shared
// secret when one is set, otherwise the auth server's JWKS, fetched lazily
// and cached, so the books server starts (and reports not ready) while the
// auth server is still down. jwksBase overrides LATCHKEY_AUTH_URL (demo).
func booksKeys(cfg *config, jwksBase *string) (token.KeySource, func(context.Context) error, error) {
	if cfg.Secret != nil {
		// The previous secret verifies too while a secret changes.
		ring, err := latchkey.SharedSecretKeyRing(cfg.Secret, cfg.PreviousSecret)
		if err != nil {
			return nil, nil, usageErr("ACCESS_TOKEN_SECRET: %v", err)
		}
		return ring, func(context.Context) error { return nil }, nil
	}
	base := cfg.AuthURL
	if jwksBase != nil {
		base = *jwksBase
	}
	remote, err := jwks.NewRemote(jwks.Config{
		URL:    base + "/.well-known/jwks.json",
		Client: &http.Client{Timeout: 5 * time.Second},
	})
	if err != nil {
		return nil, nil, usageErr("LATCHKEY_AUTH_URL: %v", err)
	}
	return remote, remote.Ready, nil
}

type booksServer struct {
	handler http.Handler
	close   func()
}

// newBooks builds the books server. authBase is where it reaches the auth
// server's revocation feed, as booksKeys reaches its JWKS.
func newBooks(ctx context.Context, cfg *config, keys token.KeySource, ready func(context.Context) error, authBase string, logger *slog.Logger, seed bool) (*booksServer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	store, err := books.Open(ctx, cfg.BooksDatabaseURL)
	if err != nil {
		return nil, usageErr("LATCHKEY_BOOKS_DATABASE_URL: %v", err)
	}
	if seed {
		if err := store.SeedDemo(ctx); err != nil {
			store.Close()
			return nil, err
		}
	}
	// The feed is followed in shared-secret mode too: revoking a session
	// has nothing to do with how tokens are signed.
	var feed *revocation.Follower
	opts := []token.Option{token.WithIssuer(cfg.Issuer), token.WithAudience(cfg.Audience)}
	if cfg.RevocationPoll > 0 {
		feed, err = revocation.New(revocation.Config{
			URL: authBase + "/.well-known/revocations", Issuer: cfg.Issuer, Poll: cfg.RevocationPoll, Logger: logger,
		})
		if err != nil {
			store.Close()
			return nil, usageErr("LATCHKEY_AUTH_URL: %v", err)
		}
		opts = append(opts, token.WithRevocations(feed))
	}
	verifier := token.NewVerifier(keys, opts...)
	bcfg := books.Config{
		Store:       store,
		Verifier:    verifier,
		CORSOrigins: cfg.CORSOrigins,
		Logger:      logger,
		Ready:       ready,
		Revocations: feed,
	}
	if cfg.metrics != nil {
		bcfg.BearerOptions = []bearer.Option{cfg.metrics.Refusals("books")}
	}
	h, err := books.New(bcfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	if cfg.metrics != nil {
		h = cfg.metrics.HTTP("books", h)
	}
	stopFeed := func() {}
	if feed != nil {
		if cfg.metrics != nil {
			cfg.metrics.RevocationFeed("books", feed.Age)
		}
		// Not ctx, which ends with this function: the feed runs until close.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { feed.Run(fctx); close(done) }()
		stopFeed = func() { cancel(); <-done }
	}
	return &booksServer{handler: server.AccessLog(logger, cfg.TrustedProxies, h), close: func() { stopFeed(); store.Close() }}, nil
}
