package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/books"
	"github.com/latchkey-dev/latchkey/server"
	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/jwks"
)

func cmdBooks(ctx context.Context, args []string, e env) error {
	cfg, _, err := loadConfig(booksCmd, args, e, nil)
	if err != nil {
		return err
	}
	logger := newLogger(e.stderr, cfg.LogLevel).With("server", "books")
	if err := startMetrics(ctx, cfg, logger); err != nil {
		return err
	}
	keys, ready, err := booksKeys(cfg, nil)
	if err != nil {
		return err
	}
	b, err := newBooks(ctx, cfg, keys, ready, logger, false)
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
		s, err := token.NewHMACSigner(cfg.Secret)
		if err != nil {
			return nil, nil, usageErr("ACCESS_TOKEN_SECRET: %v", err)
		}
		return token.StaticKeys(s.VerificationKey()), func(context.Context) error { return nil }, nil
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

func newBooks(ctx context.Context, cfg *config, keys token.KeySource, ready func(context.Context) error, logger *slog.Logger, seed bool) (*booksServer, error) {
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
	verifier := token.NewVerifier(keys, token.WithIssuer(cfg.Issuer), token.WithAudience(cfg.Audience))
	bcfg := books.Config{
		Store:       store,
		Verifier:    verifier,
		CORSOrigins: cfg.CORSOrigins,
		Logger:      logger,
		Ready:       ready,
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
	return &booksServer{handler: server.AccessLog(logger, cfg.TrustedProxies, h), close: func() { store.Close() }}, nil
}
