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
	"github.com/latchkey-dev/latchkey/token"
)

// userUsage is what `latchkey user` says about its subcommands.
const userUsage = `Usage: latchkey user add [flags] USERNAME

Manage users. Run "latchkey user add -h" for its flags.
`

// cmdUser dispatches `latchkey user SUBCOMMAND`; add is the only one yet.
func cmdUser(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, userUsage)
		return usageErr("user: want a subcommand: add")
	}
	switch args[0] {
	case "add":
		return cmdUserAdd(ctx, args[1:], e)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stderr, userUsage)
		return errHelp
	}
	fmt.Fprint(e.stderr, userUsage)
	return usageErr("user: unknown subcommand %q (want add)", args[0])
}

// cmdUserAdd implements `latchkey user add [--role admin|member] USERNAME`.
// The password never comes from argv, where other users of the machine can
// read it: it is prompted for without echo on a terminal, or read as the
// first line of standard input.
func cmdUserAdd(ctx context.Context, args []string, e env) error {
	var role string
	cfg, names, err := loadConfig(userAddCmd, args, e, func(fs *flag.FlagSet) {
		fs.StringVar(&role, "role", string(latchkey.RoleMember), "admin or member")
	})
	if err != nil {
		return err
	}
	if !latchkey.Role(role).Valid() {
		return usageErr("user add: --role must be admin or member, got %q", role)
	}
	if len(names) != 1 {
		return usageErr("user add: want exactly one USERNAME after the flags, got %d arguments", len(names))
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
	// Adding a user signs nothing, but a Service needs a signer: a
	// throwaway one, never stored, keeps this command from creating a
	// signing key that the auth server would then publish.
	signer, err := token.NewHMACSigner([]byte(newSecret()))
	if err != nil {
		return err
	}
	svc, err := latchkey.NewService(latchkey.Config{
		Store:    store,
		Signer:   signer,
		Logger:   newLogger(e.stderr, cfg.LogLevel),
		Issuer:   cfg.Issuer,
		Audience: cfg.Audience,
	})
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
	fs.Usage = func() { fmt.Fprintf(e.stderr, "Usage: latchkey secret\n\n%s\n", secretHelp) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageErr("%v", err)
	}
	fmt.Fprintln(e.stdout, newSecret())
	return nil
}
