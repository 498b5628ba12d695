package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/token"
)

// The operator commands work on the database directly, for when no admin
// can sign in: latchkey user, latchkey sessions, latchkey keys. They act as
// latchkey.Operator(), so every rule of the admin API applies except the
// role check, and every change is audited "by the command line".

var (
	operatorSettings = []string{"LATCHKEY_DATABASE_URL", "LATCHKEY_LOG_LEVEL"}
	keysSettings     = []string{"LATCHKEY_DATABASE_URL", "LATCHKEY_SIGNING_ALG", "LATCHKEY_ACCESS_TTL",
		"LATCHKEY_KEY_ENCRYPTION_KEY", "LATCHKEY_LOG_LEVEL"}

	userListCmd    = command{name: "user list", args: "[--json]", help: "List the users.", settings: operatorSettings}
	userSetRoleCmd = command{name: "user set-role", args: "USERNAME admin|member", help: "Change a user's role; their access tokens stop working at every verifier that follows the revocation feed.", settings: operatorSettings}
	userDisableCmd = command{name: "user disable", args: "USERNAME", help: "Disable a user and end every session of theirs.", settings: operatorSettings}
	userEnableCmd  = command{name: "user enable", args: "USERNAME", help: "Enable a disabled user again.", settings: operatorSettings}
	userPasswdCmd  = command{name: "user passwd", args: "USERNAME", help: "Set a new password (prompted for, or the first line of standard input) and end every session of the user.", settings: operatorSettings}
	userTOTPOffCmd = command{name: "user totp-off", args: "USERNAME", help: "Turn off a user's two-step sign-in (TOTP and recovery codes), for a user who lost both; they sign in with the password alone again.", settings: operatorSettings}
	sessionsCmd    = command{name: "sessions", args: "list|revoke --user USERNAME [--json]", help: "List a user's live sessions, or end them all.", settings: operatorSettings}
	keysCmd        = command{name: "keys", args: "list [--json] | rotate | retire [--] KID", help: "List the signing keys; rotate them (next becomes active); withdraw one for cause.", settings: keysSettings}
)

// operator is what an operator command works with; close flushes the
// audit events it recorded and closes the database.
type operator struct {
	svc   *latchkey.Service
	keys  *latchkey.KeyRing // set for latchkey keys only
	store latchkey.Store
	audit *latchkey.AuditLog
	out   io.Writer
	json  bool
}

func openOperator(ctx context.Context, cfg *config, e env, withKeys bool) (*operator, error) {
	store, err := openStore(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	logger := newLogger(e.stderr, cfg.LogLevel)
	op := &operator{store: store, audit: latchkey.NewAuditLog(store, logger, nil), out: e.stdout}
	var signer latchkey.AccessTokenSigner
	if withKeys {
		op.keys, err = latchkey.NewKeyRing(ctx, latchkey.KeyRingConfig{Store: store, Alg: cfg.SigningAlg,
			AccessTTL: cfg.AccessTTL, EncryptionKey: cfg.EncryptionKey, Logger: logger, Audit: op.audit})
		if errors.Is(err, latchkey.ErrKeysSealed) || errors.Is(err, latchkey.ErrWrongEncryptionKey) {
			err = usageErr("LATCHKEY_KEY_ENCRYPTION_KEY: %v", err)
		}
		signer = op.keys
	} else {
		// These commands sign nothing; a throwaway signer, never stored,
		// keeps them from creating a signing key.
		signer, err = token.NewHMACSigner([]byte(newSecret()))
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	op.svc, err = latchkey.NewService(latchkey.Config{Store: store, Signer: signer, Logger: logger, Audit: op.audit,
		Issuer: cfg.Issuer, Audience: cfg.Audience, AccessTTL: cfg.AccessTTL, Argon2: cfg.PasswordHash, EncryptionKey: cfg.EncryptionKey})
	if err != nil {
		store.Close()
		return nil, err
	}
	return op, nil
}

func (op *operator) close(ctx context.Context) error {
	err := op.audit.Flush(ctx)
	if cerr := op.store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// operatorCommand loads cmd's settings (with --json), checks that want
// arguments follow, opens the database and runs do.
func operatorCommand(ctx context.Context, cmd command, args []string, e env, want int, withKeys bool,
	own func(*flag.FlagSet), do func(op *operator, args []string) error) error {
	var asJSON bool
	cfg, rest, err := loadConfig(cmd, args, e, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON for scripts instead of a table")
		if own != nil {
			own(fs)
		}
	})
	if err != nil {
		return err
	}
	if len(rest) != want {
		return usageErr("%s: want %d arguments (%s), got %d", cmd.name, want, cmd.args, len(rest))
	}
	op, err := openOperator(ctx, cfg, e, withKeys)
	if err != nil {
		return err
	}
	op.json = asJSON
	err = do(op, rest)
	if cerr := op.close(ctx); err == nil {
		err = cerr
	}
	return operatorErr(cmd.name, err)
}

// operatorErr turns the domain's answers into the one line a command
// ends with; input mistakes exit 2.
func operatorErr(name string, err error) error {
	var verr *latchkey.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &verr):
		return usageErr("%s: %v", name, verr)
	case errors.Is(err, latchkey.ErrUserNotFound):
		return usageErr("%s: no such user", name)
	case errors.Is(err, latchkey.ErrKeyNotFound):
		return usageErr("%s: no published signing key has that kid", name)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (op *operator) user(ctx context.Context, name string) (*latchkey.User, error) {
	u, err := op.store.UserByUsername(ctx, name)
	if errors.Is(err, latchkey.ErrNotFound) {
		return nil, latchkey.ErrUserNotFound
	}
	return u, err
}

// print writes v as JSON, or rows as a table under header.
func (op *operator) print(v any, header string, rows [][]any) error {
	if op.json {
		enc := json.NewEncoder(op.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(op.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		for i, c := range r {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

type userOut struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Role      string `json:"role"`
	Disabled  bool   `json:"disabled"`
	CreatedAt string `json:"createdAt"`
}

func cmdUserList(ctx context.Context, args []string, e env) error {
	return operatorCommand(ctx, userListCmd, args, e, 0, false, nil, func(op *operator, _ []string) error {
		var out []userOut
		var rows [][]any
		for cursor := ""; ; {
			users, next, err := op.svc.ListUsers(ctx, latchkey.Operator(), cursor, latchkey.MaxPageSize)
			if err != nil {
				return err
			}
			for _, u := range users {
				out = append(out, userOut{u.ID, u.Username, string(u.Role), u.Disabled, stamp(u.CreatedAt)})
				rows = append(rows, []any{u.Username, u.Role, u.Disabled, stamp(u.CreatedAt), u.ID})
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		return op.print(out, "USERNAME\tROLE\tDISABLED\tCREATED\tID", rows)
	})
}

// cmdUserUpdate is set-role, disable and enable: one UpdateUser each.
func cmdUserUpdate(ctx context.Context, cmd command, args []string, e env, want int, upd func(args []string) (latchkey.UserUpdate, error)) error {
	return operatorCommand(ctx, cmd, args, e, want, false, nil, func(op *operator, args []string) error {
		change, err := upd(args)
		if err != nil {
			return err
		}
		u, err := op.user(ctx, args[0])
		if err != nil {
			return err
		}
		if u, err = op.svc.UpdateUser(ctx, latchkey.Operator(), u.ID, change); err != nil {
			return err
		}
		return op.print(userOut{u.ID, u.Username, string(u.Role), u.Disabled, stamp(u.CreatedAt)},
			"USERNAME\tROLE\tDISABLED", [][]any{{u.Username, u.Role, u.Disabled}})
	})
}

func cmdUserPasswd(ctx context.Context, args []string, e env) error {
	return operatorCommand(ctx, userPasswdCmd, args, e, 1, false, nil, func(op *operator, args []string) error {
		u, err := op.user(ctx, args[0])
		if err != nil {
			return err
		}
		password, err := readPassword(e)
		if err != nil {
			return err
		}
		if err := op.svc.ResetPassword(ctx, latchkey.Operator(), u.ID, password); err != nil {
			return err
		}
		fmt.Fprintf(op.out, "password of %s changed; every session of theirs ended\n", u.Username)
		return nil
	})
}

func cmdUserTOTPOff(ctx context.Context, args []string, e env) error {
	return operatorCommand(ctx, userTOTPOffCmd, args, e, 1, false, nil, func(op *operator, args []string) error {
		u, err := op.user(ctx, args[0])
		if err != nil {
			return err
		}
		if err := op.svc.RemoveTOTP(ctx, latchkey.Operator(), u.ID); err != nil {
			return err
		}
		fmt.Fprintf(op.out, "two-step sign-in of %s is off; they sign in with the password alone\n", u.Username)
		return nil
	})
}

type sessionOut struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"createdAt"`
	LastUsedAt string `json:"lastUsedAt"`
	ExpiresAt  string `json:"expiresAt"`
	UserAgent  string `json:"userAgent"`
	IP         string `json:"ip"`
}

func cmdSessions(ctx context.Context, args []string, e env) error {
	if len(args) > 0 && isHelp(args[0]) {
		args = []string{"list", "-h"} // the flags are the same for both
	}
	if len(args) == 0 || (args[0] != "list" && args[0] != "revoke") {
		return usageErr("sessions: want list or revoke, then --user USERNAME")
	}
	sub := args[0]
	var name string
	return operatorCommand(ctx, sessionsCmd, args[1:], e, 0, false, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "user", "", "the user whose sessions to list or end")
	}, func(op *operator, _ []string) error {
		if name == "" {
			return usageErr("sessions %s: --user USERNAME is required", sub)
		}
		u, err := op.user(ctx, name)
		if err != nil {
			return err
		}
		if sub == "revoke" {
			if err := op.svc.RevokeUserSessions(ctx, latchkey.Operator(), u.ID); err != nil {
				return err
			}
			fmt.Fprintf(op.out, "every session of %s ended\n", u.Username)
			return nil
		}
		sessions, err := op.svc.UserSessions(ctx, latchkey.Operator(), u.ID)
		if err != nil {
			return err
		}
		out := []sessionOut{}
		var rows [][]any
		for _, s := range sessions {
			out = append(out, sessionOut{s.ID, stamp(s.CreatedAt), stamp(s.LastUsedAt), stamp(s.ExpiresAt), s.UserAgent, s.IP})
			rows = append(rows, []any{s.ID, stamp(s.CreatedAt), stamp(s.LastUsedAt), stamp(s.ExpiresAt), s.IP, s.UserAgent})
		}
		return op.print(out, "SESSION\tCREATED\tLAST USED\tEXPIRES\tIP\tUSER AGENT", rows)
	})
}

type keyOut struct {
	ID          string `json:"kid"`
	Alg         string `json:"alg"`
	State       string `json:"state"`
	Sealed      bool   `json:"sealed"`
	CreatedAt   string `json:"createdAt"`
	ActivatedAt string `json:"activatedAt"`
	RetiredAt   string `json:"retiredAt"`
}

func cmdKeys(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usageErr("keys: want list, rotate or retire KID")
	}
	if isHelp(args[0]) {
		args = []string{"list", "-h"}
	}
	sub, rest := args[0], args[1:]
	want := map[string]int{"list": 0, "rotate": 0, "retire": 1}
	n, ok := want[sub]
	if !ok {
		return usageErr("keys: unknown subcommand %q (want list, rotate or retire KID)", sub)
	}
	return operatorCommand(ctx, keysCmd, rest, e, n, true, nil, func(op *operator, args []string) error {
		switch sub {
		case "rotate":
			if err := op.keys.Rotate(ctx); err != nil {
				return err
			}
		case "retire":
			if err := op.keys.Retire(ctx, args[0]); err != nil {
				return err
			}
		}
		keys, err := op.keys.List(ctx)
		if err != nil {
			return err
		}
		out := []keyOut{}
		var rows [][]any
		for _, k := range keys {
			out = append(out, keyOut{k.ID, k.Alg, string(k.State), k.Sealed, stamp(k.CreatedAt), stamp(k.ActivatedAt), stamp(k.RetiredAt)})
			rows = append(rows, []any{k.ID, k.Alg, k.State, k.Sealed, stamp(k.CreatedAt), stamp(k.ActivatedAt), stamp(k.RetiredAt)})
		}
		return op.print(out, "KID\tALG\tSTATE\tSEALED\tCREATED\tACTIVATED\tRETIRED", rows)
	})
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" || a == "help" }
