package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/latchkey-dev/latchkey"
)

// cmdUser implements `latchkey user add [--role admin|member] USERNAME`.
// The password never comes from argv, where other users of the machine can
// read it: it is prompted for without echo on a terminal, or read as the
// first line of standard input.
func cmdUser(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(e.stderr, "Usage: latchkey user add [--role admin|member] [flags] USERNAME")
		return usageErr("user: want the subcommand add")
	}
	args = args[1:]
	// --role belongs to `user add` itself; the rest are settings.
	role := string(latchkey.RoleMember)
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--role" || a == "-role":
			if i+1 >= len(args) {
				return usageErr("user add: --role needs a value")
			}
			role = args[i+1]
			i++
		case strings.HasPrefix(a, "--role="), strings.HasPrefix(a, "-role="):
			role = a[strings.Index(a, "=")+1:]
		default:
			rest = append(rest, a)
		}
	}
	if !latchkey.Role(role).Valid() {
		return usageErr("user add: --role must be admin or member, got %q", role)
	}
	cfg, names, err := loadConfig("user", userSettings, rest, e.getenv, e.stderr)
	if errors.Is(err, errHelp) {
		fmt.Fprintln(e.stderr, "  -role string\n    \tadmin or member (default \"member\")")
	}
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageErr("user add: want exactly one USERNAME, got %d", len(names))
	}
	password, err := readPassword(e)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, _, err := newService(ctx, cfg, store, newLogger(e.stderr, cfg.LogLevel))
	if err != nil {
		return err
	}
	u, err := svc.CreateUser(ctx, names[0], password, latchkey.Role(role))
	var verr *latchkey.ValidationError
	switch {
	case errors.As(err, &verr):
		return usageErr("user add: %v", verr)
	case errors.Is(err, latchkey.ErrConflict):
		return usageErr("user add: username %q is taken", names[0])
	case err != nil:
		return err
	}
	fmt.Fprintf(e.stdout, "created %s %s (id %s) at %s\n", u.Role, u.Username, u.ID, u.CreatedAt.Format(time.RFC3339))
	return nil
}

func readPassword(e env) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, "Password: ")
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(e.stderr, "Repeat password: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(p) != string(again) {
			return "", usageErr("user add: the passwords do not match")
		}
		return string(p), nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageErr("user add: no password on standard input")
	}
	return line, nil
}

func cmdSecret(args []string, e env) error {
	fs := flag.NewFlagSet("latchkey secret", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprintf(e.stderr, "Usage: latchkey secret\n\n%s\n", commandHelp["secret"]) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageErr("%v", err)
	}
	fmt.Fprintln(e.stdout, newSecret())
	return nil
}
