package main

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/latchkey-dev/latchkey"
)

// The tutorials' users. They exist only in demo mode.
var demoUsers = []struct {
	username, password string
	role               latchkey.Role
}{
	{"john", "password123admin", latchkey.RoleAdmin},
	{"anna", "password123member", latchkey.RoleMember},
}

func cmdDemo(ctx context.Context, args []string, e env) error {
	cfg, _, err := loadConfig(demoCmd, args, e, nil)
	if err != nil {
		return err
	}
	logger, closeLog := newServerLogger(e.stderr, cfg.LogLevel)
	defer closeLog()

	// Listening comes first: with port 0, the issuer is known only then.
	authLn, err := listen("LATCHKEY_ADDR", cfg.Addr)
	if err != nil {
		return err
	}
	defer authLn.Close()
	booksLn, err := listen("LATCHKEY_BOOKS_ADDR", cfg.BooksAddr)
	if err != nil {
		return err
	}
	defer booksLn.Close()
	cfg.listenedOn(authLn.Addr())
	cfg.booksListenedOn(booksLn.Addr())

	if err := startMetrics(ctx, cfg, logger); err != nil {
		return err
	}
	auth, err := newAuth(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer auth.close()
	for _, u := range demoUsers {
		if _, err := auth.svc.EnsureUser(ctx, u.username, u.password, u.role); err != nil {
			return fmt.Errorf("demo user %s: %w", u.username, err)
		}
	}
	releaseStartupMemory()
	// The books server fetches the JWKS over HTTP exactly as it would from
	// a separate auth server, at the address the auth server really got.
	jwksBase := dialable(authLn.Addr())
	keys, ready, err := booksKeys(cfg, &jwksBase)
	if err != nil {
		return err
	}
	b, err := newBooks(ctx, cfg, keys, ready, jwksBase, logger.With("server", "books"), true)
	if err != nil {
		return err
	}
	defer b.close()
	if e.ready != nil {
		e.ready(map[string]string{"auth": authLn.Addr().String(), "books": booksLn.Addr().String()})
	}
	fmt.Fprintf(e.stdout, "Latchkey demo: auth server on %s, books server on %s\nDemo users: john / password123admin (admin), anna / password123member (member)\n",
		browsable(authLn.Addr()), browsable(booksLn.Addr()))
	// The page works only at the issuer's origin, which its cookie and
	// CSRF check belong to: localhost, not the 127.0.0.1 listened on.
	fmt.Fprintf(e.stdout, "Sign-in page: %s/\n", cfg.Issuer)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { errs[0] = serveUntilDone(ctx, logger.With("server", "auth"), authLn, auth.handler); cancel() })
	wg.Go(func() { errs[1] = serveUntilDone(ctx, logger.With("server", "books"), booksLn, b.handler); cancel() })
	wg.Wait()
	if errs[0] != nil {
		return errs[0]
	}
	return errs[1]
}

// browsable turns a listener address into a URL a person can paste:
// ":3000" listens on every interface, which is localhost to them.
func browsable(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// dialable is a URL at which this process reaches its own listener at a:
// loopback when it listens on every interface, else its own address.
func dialable(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
