// Command loadtarget serves the books server's GET /books three ways from one
// process and one store, so that scripts/load.sh can measure what the
// bearer-token check costs under load, with everything else equal:
//
//   - -auth-addr: exactly as `latchkey books` and `latchkey demo` wire it:
//     books.New with a token.Verifier over the auth server's JWKS (fetched
//     over HTTP and cached, issuer and audience checked, the verifier's
//     default cache of verified tokens on), inside server.AccessLog.
//   - -uncached-addr: the same, with the verifier's cache of verified tokens
//     off (token.WithCacheSize(0)), so every request checks the ES256
//     signature and the claims: the cost of a token's first request.
//   - -nocheck-addr: the same books.New handler, but its Verifier accepts
//     any token and returns fixed claims: the bearer middleware still parses
//     the header and puts claims in the context, only the token check
//     (signature, claims, cache lookup) is gone.
//   - -noauth-addr: no bearer middleware at all: a mux with GET /books whose
//     handler does what books' list handler does (Store.ListBooks, then
//     Content-Type, 200 and json.Encoder), with the same "Vary: Origin"
//     header the CORS wrapper adds, inside the same server.AccessLog. Its
//     body is byte-identical to the protected route's (load.sh checks).
//
// It is a benchmark harness, not a server to deploy: the -nocheck listener
// accepts every token.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/latchkey-dev/latchkey/books"
	"github.com/latchkey-dev/latchkey/server"
	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/jwks"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtarget:", err)
		os.Exit(1)
	}
}

func run() error {
	authURL := flag.String("auth-url", "http://127.0.0.1:3000", "auth server whose JWKS verifies tokens")
	issuer := flag.String("issuer", "http://localhost:3000", "required iss")
	audience := flag.String("audience", "latchkey", "required aud")
	dbPath := flag.String("db", "", "books SQLite file (created and seeded with the demo books); required")
	authAddr := flag.String("auth-addr", "127.0.0.1:4101", "listen address of the production-wired handler")
	uncachedAddr := flag.String("uncached-addr", "127.0.0.1:4104", "listen address of the production wiring with the verified-token cache off")
	nocheckAddr := flag.String("nocheck-addr", "127.0.0.1:4102", "listen address of books.New with an accept-all verifier")
	noauthAddr := flag.String("noauth-addr", "127.0.0.1:4103", "listen address of GET /books without the bearer middleware")
	cors := flag.String("cors-origins", "http://localhost:3000", "CORS origins, as the demo's default")
	accessLog := flag.Bool("access-log", true, "log each request at info level to stderr, as the latchkey binary does")
	flag.Parse()
	if *dbPath == "" {
		return errors.New("-db is required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var logOut io.Writer = io.Discard
	if *accessLog {
		logOut = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo})).With("server", "books")

	store, err := books.Open(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.SeedDemo(ctx); err != nil {
		return err
	}

	remote, err := jwks.NewRemote(jwks.Config{
		URL:    strings.TrimRight(*authURL, "/") + "/.well-known/jwks.json",
		Client: &http.Client{Timeout: 5 * time.Second},
	})
	if err != nil {
		return err
	}
	var origins []string
	for o := range strings.SplitSeq(*cors, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}

	verifier := token.NewVerifier(remote, token.WithIssuer(*issuer), token.WithAudience(*audience))
	prod, err := books.New(books.Config{Store: store, Verifier: verifier, CORSOrigins: origins, Logger: logger, Ready: remote.Ready})
	if err != nil {
		return err
	}
	uncachedVerifier := token.NewVerifier(remote, token.WithIssuer(*issuer), token.WithAudience(*audience), token.WithCacheSize(0))
	uncached, err := books.New(books.Config{Store: store, Verifier: uncachedVerifier, CORSOrigins: origins, Logger: logger, Ready: remote.Ready})
	if err != nil {
		return err
	}
	nocheck, err := books.New(books.Config{Store: store, Verifier: acceptAll{}, CORSOrigins: origins, Logger: logger})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /books", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		list, err := store.ListBooks(r.Context())
		if err != nil {
			http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		json.NewEncoder(w).Encode(list)
	})

	handlers := []struct {
		name, addr string
		h          http.Handler
	}{
		{"auth", *authAddr, server.AccessLog(logger, nil, prod)},
		{"uncached", *uncachedAddr, server.AccessLog(logger, nil, uncached)},
		{"nocheck", *nocheckAddr, server.AccessLog(logger, nil, nocheck)},
		{"noauth", *noauthAddr, server.AccessLog(logger, nil, mux)},
	}
	errc := make(chan error, len(handlers))
	var servers []*http.Server
	for _, hd := range handlers {
		ln, err := net.Listen("tcp", hd.addr)
		if err != nil {
			return err
		}
		// The same timeouts as cmd/latchkey's serveUntilDone.
		srv := &http.Server{
			Handler:           hd.h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
		}
		servers = append(servers, srv)
		fmt.Fprintf(os.Stdout, "loadtarget: %s on %s\n", hd.name, ln.Addr())
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	return nil
}

// acceptAll is a bearer.Verifier that checks nothing: every token is a
// member's. Only for the -nocheck listener.
type acceptAll struct{}

var fixedClaims = &token.Claims{Subject: "load", Username: "load", Role: "member"}

func (acceptAll) Verify(context.Context, string) (*token.Claims, error) { return fixedClaims, nil }
