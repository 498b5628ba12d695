// Command loadtarget serves the books server's GET /books several ways from one
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
//   - -bare-addr: the ceiling of any GET /books: a bare net/http handler
//     writing the list's JSON bytes, read from the store once at start,
//     from memory. No middleware, no access log, no token, no store.
//   - -pg-addr, with -pg-url: the production wiring of -auth-addr on a
//     PostgreSQL books store in the schema -pg-schema (created, seeded with
//     the demo books, and dropped again at exit), so that the same load
//     tool measures both backends in one run.
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
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

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
	bareAddr := flag.String("bare-addr", "127.0.0.1:4105", "listen address of the bare handler serving the list's bytes from memory")
	pgURL := flag.String("pg-url", "", "PostgreSQL URL for a books store served at -pg-addr; empty: none")
	pgSchema := flag.String("pg-schema", "", "with -pg-url: a schema of its own, created and dropped at exit; must start with loadtarget_")
	pgAddr := flag.String("pg-addr", "127.0.0.1:4106", "listen address of the production wiring on PostgreSQL")
	cpuProfile := flag.String("cpuprofile", "", "on SIGUSR1, start a CPU profile into this file; on SIGUSR2 (or exit), end it (go tool pprof -top)")
	accessLog := flag.Bool("access-log", true, "log each request at info level to stderr, as the latchkey binary does")
	flag.Parse()
	if *dbPath == "" {
		return errors.New("-db is required")
	}
	if *pgURL != "" && !strings.HasPrefix(*pgSchema, "loadtarget_") {
		return errors.New("-pg-url needs -pg-schema loadtarget_NAME, which is dropped at exit")
	}

	if *cpuProfile != "" {
		defer profileOnSignal(*cpuProfile)()
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

	list, err := store.ListBooks(ctx)
	if err != nil {
		return err
	}
	bareBody, err := json.Marshal(list)
	if err != nil {
		return err
	}
	bareBody = append(bareBody, '\n') // as json.Encoder writes it
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(bareBody)
	})

	handlers := []struct {
		name, addr string
		h          http.Handler
	}{
		{"auth", *authAddr, server.AccessLog(logger, nil, prod)},
		{"uncached", *uncachedAddr, server.AccessLog(logger, nil, uncached)},
		{"nocheck", *nocheckAddr, server.AccessLog(logger, nil, nocheck)},
		{"noauth", *noauthAddr, server.AccessLog(logger, nil, mux)},
		{"bare", *bareAddr, bare},
	}
	if *pgURL != "" {
		pg, err := openPostgres(ctx, *pgURL, *pgSchema)
		if err != nil {
			return err
		}
		defer pg.close()
		pgProd, err := books.New(books.Config{Store: pg.store, Verifier: verifier, CORSOrigins: origins, Logger: logger, Ready: remote.Ready})
		if err != nil {
			return err
		}
		handlers = append(handlers, struct {
			name, addr string
			h          http.Handler
		}{"pg", *pgAddr, server.AccessLog(logger, nil, pgProd)})
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

// profileOnSignal profiles the process's CPU into path from a SIGUSR1
// to the next SIGUSR2, so that load.sh can profile one case of a process
// that serves several. The function it returns ends a profile still
// running.
func profileOnSignal(path string) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var f *os.File
		end := func() {
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
		}
		defer end()
		for {
			select {
			case s := <-sig:
				if s == syscall.SIGUSR2 {
					end()
					continue
				}
				if f != nil {
					continue
				}
				var err error
				if f, err = os.Create(path); err == nil {
					err = pprof.StartCPUProfile(f)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "loadtarget: cpu profile:", err)
					if f != nil {
						f.Close()
						f = nil
					}
				}
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sig); close(done); <-finished }
}

// pgStore is the PostgreSQL books store of -pg-url, in a schema of its
// own that close drops.
type pgStore struct {
	store  *books.PostgresStore
	url    string
	schema string
}

func openPostgres(ctx context.Context, url, schema string) (*pgStore, error) {
	s, err := books.OpenPostgres(ctx, books.PostgresConfig{URL: url, Schema: schema})
	if err != nil {
		return nil, err
	}
	p := &pgStore{store: s, url: url, schema: schema}
	if err := s.SeedDemo(ctx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *pgStore) close() {
	p.store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtarget: drop schema:", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{p.schema}.Sanitize()+` CASCADE`); err != nil {
		fmt.Fprintln(os.Stderr, "loadtarget: drop schema:", err)
	}
}

// acceptAll is a bearer.Verifier that checks nothing: every token is a
// member's. Only for the -nocheck listener.
type acceptAll struct{}

var fixedClaims = &token.Claims{Subject: "load", Username: "load", Role: "member"}

func (acceptAll) Verify(context.Context, string) (*token.Claims, error) { return fixedClaims, nil }
