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

// userUsage is what `latchkey user` says about its subcommands.
const userUsage = `Usage: latchkey user add [flags] USERNAME
       latchkey user list [--json]
       latchkey user set-role USERNAME admin|member
       latchkey user disable USERNAME
       latchkey user enable USERNAME
       latchkey user passwd USERNAME
       latchkey user totp-off USERNAME

Manage users on the database directly. Run "latchkey user SUBCOMMAND -h" for its flags.
`

// cmdUser dispatches `latchkey user SUBCOMMAND`.
func cmdUser(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, userUsage)
		return usageErr("user: want a subcommand: add, list, set-role, disable, enable, passwd or totp-off")
	}
	yes, no := true, false
	switch args[0] {
	case "add":
		return cmdUserAdd(ctx, args[1:], e)
	case "list":
		return cmdUserList(ctx, args[1:], e)
	case "set-role":
		return cmdUserUpdate(ctx, userSetRoleCmd, args[1:], e, 2, func(a []string) (latchkey.UserUpdate, error) {
			role := latchkey.Role(a[1])
			return latchkey.UserUpdate{Role: &role}, nil
		})
	case "disable":
		return cmdUserUpdate(ctx, userDisableCmd, args[1:], e, 1, func([]string) (latchkey.UserUpdate, error) {
			return latchkey.UserUpdate{Disabled: &yes}, nil
		})
	case "enable":
		return cmdUserUpdate(ctx, userEnableCmd, args[1:], e, 1, func([]string) (latchkey.UserUpdate, error) {
			return latchkey.UserUpdate{Disabled: &no}, nil
		})
	case "passwd":
		return cmdUserPasswd(ctx, args[1:], e)
	case "totp-off":
		return cmdUserTOTPOff(ctx, args[1:], e)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stderr, userUsage)
		return errHelp
	}
	fmt.Fprint(e.stderr, userUsage)
	return usageErr("user: unknown subcommand %q (want add, list, set-role, disable, enable, passwd or totp-off)", args[0])
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
	op, err := openOperator(ctx, cfg, e, false)
	if err != nil {
		return err
	}
	u, err := op.svc.AdminCreateUser(ctx, latchkey.Operator(), names[0], password, latchkey.Role(role))
	if cerr := op.close(ctx); err == nil {
		err = cerr
	}
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
