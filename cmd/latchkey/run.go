package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
)

// env groups what a command reads from and writes to, so that tests run
// commands exactly as main does.
type env struct {
	getenv func(string) string
	// environ lists the environment as KEY=value, to find misspelt
	// settings; nil means there is nothing to check.
	environ func() []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	// ready, when set, is told the addresses the servers listen on; tests
	// use it to learn the ports of servers started on 127.0.0.1:0.
	ready func(addrs map[string]string)
}

// command describes a subcommand that reads settings.
type command struct {
	name     string // as typed after latchkey: "serve", "user add"
	args     string // what follows the name in its usage line
	help     string
	settings []string          // the variables it reads
	defaults map[string]string // where its defaults differ from the table
}

var (
	serveCmd = command{name: "serve", args: "[flags]",
		help: "Run the auth server: register, login, token refresh, logout, keys.",
		settings: []string{"LATCHKEY_ADDR", "LATCHKEY_DATABASE_URL", "LATCHKEY_ISSUER", "LATCHKEY_AUDIENCE",
			"LATCHKEY_SIGNING_ALG", "ACCESS_TOKEN_SECRET", "LATCHKEY_ACCESS_TTL", "LATCHKEY_REFRESH_IDLE_TTL",
			"LATCHKEY_SESSION_MAX_AGE", "LATCHKEY_REFRESH_REUSE_GRACE", "LATCHKEY_REGISTRATION",
			"LATCHKEY_ADMIN_USERNAME", "LATCHKEY_ADMIN_PASSWORD", "LATCHKEY_CORS_ORIGINS", "LATCHKEY_BOOKS_URL",
			"LATCHKEY_COOKIE_SECURE", "LATCHKEY_REDIS_URL", "LATCHKEY_TRUSTED_PROXIES", "LATCHKEY_KEY_ROTATION",
			"LATCHKEY_KEY_ENCRYPTION_KEY", "ACCESS_TOKEN_SECRET_PREVIOUS", "LATCHKEY_PASSWORD_HASH",
			"LATCHKEY_AUDIT_RETENTION", "LATCHKEY_METRICS_ADDR", "LATCHKEY_LOG_LEVEL"}}
	// The books server reads LATCHKEY_ADDR only to find the auth server
	// where a shared .env moved it.
	booksCmd = command{name: "books", args: "[flags]",
		help: "Run the books resource server, verifying access tokens from the auth server's JWKS or a shared secret.",
		settings: []string{"LATCHKEY_BOOKS_ADDR", "LATCHKEY_BOOKS_DATABASE_URL", "LATCHKEY_ADDR", "LATCHKEY_ISSUER",
			"LATCHKEY_AUDIENCE", "ACCESS_TOKEN_SECRET", "ACCESS_TOKEN_SECRET_PREVIOUS", "LATCHKEY_AUTH_URL", "LATCHKEY_CORS_ORIGINS", "LATCHKEY_TRUSTED_PROXIES",
			"LATCHKEY_REVOCATION_POLL", "LATCHKEY_METRICS_ADDR", "LATCHKEY_LOG_LEVEL"}}
	// The demo's passwords are published, so it listens on loopback
	// unless it is given an address.
	demoCmd = command{name: "demo", args: "[flags]",
		help: "Run the auth and books servers in one process with demo users (john/password123admin, anna/password123member)\n" +
			"and the three seed books; data under ./" + dataDir + "/. It listens on loopback only unless given addresses.",
		settings: append(append([]string{}, serveCmd.settings...), "LATCHKEY_BOOKS_ADDR", "LATCHKEY_BOOKS_DATABASE_URL", "LATCHKEY_REVOCATION_POLL"),
		defaults: map[string]string{"LATCHKEY_ADDR": "127.0.0.1:3000", "LATCHKEY_BOOKS_ADDR": "127.0.0.1:4000"}}
	userAddCmd = command{name: "user add", args: "[flags] USERNAME",
		help:     "Create a user. The password is prompted for on a terminal, or read as the first line of standard input;\nnever from the command line, which other users of the machine can read.",
		settings: []string{"LATCHKEY_DATABASE_URL", "LATCHKEY_LOG_LEVEL"}}
)

const (
	secretHelp  = "Print a new 64-byte random shared secret as hex, for ACCESS_TOKEN_SECRET."
	versionHelp = "Print the version."
)

// run is the whole program; main only adds the process around it.
func run(ctx context.Context, args []string, getenv func(string) string, environ func() []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, env{getenv: getenv, environ: environ, stdin: stdin, stdout: stdout, stderr: stderr})
}

func runEnv(ctx context.Context, args []string, e env) error {
	if len(args) < 2 {
		printHelp(e.stderr)
		return usageErr("no command given")
	}
	cmd, rest := args[1], args[2:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, e)
	case "books":
		return cmdBooks(ctx, rest, e)
	case "demo":
		return cmdDemo(ctx, rest, e)
	case "user":
		return cmdUser(ctx, rest, e)
	case "secret":
		return cmdSecret(rest, e)
	case "sessions":
		return cmdSessions(ctx, rest, e)
	case "keys":
		return cmdKeys(ctx, rest, e)
	case "token":
		return cmdToken(ctx, rest, e)
	case "calibrate":
		return cmdCalibrate(ctx, rest, e)
	case "version", "-version", "--version":
		fmt.Fprintln(e.stdout, "latchkey", version())
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return runEnv(ctx, append(append([]string{args[0]}, rest...), "-h"), e)
		}
		printHelp(e.stdout)
		return nil
	}
	printHelp(e.stderr)
	return usageErr("unknown command %q", cmd)
}

func printHelp(w io.Writer) {
	fmt.Fprintf(w, `latchkey %s: JWT authentication for Go services.

Usage: latchkey COMMAND [flags]

Commands:
  serve     %s
  books     %s
  demo      %s
  user add  %s
  user list|set-role|disable|enable|passwd|totp-off
            manage users on the database directly, audited "by the command line"
  sessions  %s
  keys      %s
  secret    %s
  version   %s

Run "latchkey COMMAND -h" for the flags of a command.
Settings (flag > environment > .env > default): %s
`, version(), serveCmd.help, booksCmd.help, strings.ReplaceAll(demoCmd.help, "\n", "\n            "),
		strings.ReplaceAll(userAddCmd.help, "\n", "\n            "), sessionsCmd.help, keysCmd.help, secretHelp, versionHelp, strings.Join(allSettings(), ", "))
}

// buildVersion is set by a release build, which knows its version even
// where the toolchain records none (GOFLAGS=-buildvcs=false, a tarball
// without .git):
//
//	go build -ldflags "-X main.buildVersion=v1.2.3" ./cmd/latchkey
var buildVersion string

// version says which code runs, for bug reports.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(buildVersion, bi)
}

// versionOf picks, in order: the version a release build stamped; the
// module version the toolchain recorded (`go install ...@v1.2.3`, or a
// pseudo-version from the checkout's commit); "dev-" and the commit from
// the VCS stamp; else "dev", a build from source that recorded nothing,
// as `go run` and GOFLAGS=-buildvcs=false make.
func versionOf(stamped string, bi *debug.BuildInfo) string {
	if stamped != "" {
		return stamped
	}
	if bi == nil {
		return "dev"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + dirty
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
