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
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// ready, when set, is told the addresses the servers listen on; tests
	// use it to learn the ports of servers started on 127.0.0.1:0.
	ready func(addrs map[string]string)
}

var commandHelp = map[string]string{
	"serve":   "Run the auth server: register, login, token refresh, logout, keys.",
	"books":   "Run the books resource server, verifying access tokens from the auth server's JWKS or a shared secret.",
	"demo":    "Run the auth and books servers in one process with demo users (john/password123admin, anna/password123member)\nand the three seed books; data under ./" + dataDir + "/.",
	"user":    "Manage users: latchkey user add [--role admin|member] USERNAME (password from a prompt or stdin).",
	"secret":  "Print a new 64-byte random shared secret as hex, for ACCESS_TOKEN_SECRET.",
	"version": "Print the version.",
}

// Settings each command reads.
var (
	authSettings = []string{"LATCHKEY_ADDR", "LATCHKEY_DATABASE_URL", "LATCHKEY_ISSUER", "LATCHKEY_AUDIENCE",
		"LATCHKEY_SIGNING_ALG", "ACCESS_TOKEN_SECRET", "LATCHKEY_ACCESS_TTL", "LATCHKEY_REFRESH_IDLE_TTL",
		"LATCHKEY_SESSION_MAX_AGE", "LATCHKEY_REFRESH_REUSE_GRACE", "LATCHKEY_REGISTRATION",
		"LATCHKEY_ADMIN_USERNAME", "LATCHKEY_ADMIN_PASSWORD", "LATCHKEY_LOG_LEVEL"}
	booksSettings = []string{"LATCHKEY_BOOKS_ADDR", "LATCHKEY_BOOKS_DATABASE_URL", "LATCHKEY_ISSUER",
		"LATCHKEY_AUDIENCE", "ACCESS_TOKEN_SECRET", "LATCHKEY_AUTH_URL", "LATCHKEY_CORS_ORIGINS", "LATCHKEY_LOG_LEVEL"}
	demoSettings = append(append([]string{}, authSettings...), "LATCHKEY_BOOKS_ADDR", "LATCHKEY_BOOKS_DATABASE_URL",
		"LATCHKEY_CORS_ORIGINS")
	userSettings = []string{"LATCHKEY_DATABASE_URL", "LATCHKEY_ISSUER", "LATCHKEY_AUDIENCE", "LATCHKEY_SIGNING_ALG", "ACCESS_TOKEN_SECRET", "LATCHKEY_LOG_LEVEL"}
)

// run is the whole program; main only adds the process around it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr})
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
	case "version", "-version", "--version":
		fmt.Fprintln(e.stdout, "latchkey", version())
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return runEnv(ctx, []string{args[0], rest[0], "-h"}, e)
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
  secret    %s
  version   %s

Run "latchkey COMMAND -h" for the flags of a command.
Settings (flag > environment > .env > default): %s
`, version(), commandHelp["serve"], commandHelp["books"], strings.ReplaceAll(commandHelp["demo"], "\n", "\n            "),
		commandHelp["user"], commandHelp["secret"], commandHelp["version"], strings.Join(allSettings(), ", "))
}

// version is the module version stamped by the Go toolchain; for a build
// from a checkout without one, "dev" and the commit, so that a bug report
// can say which code ran.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
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
