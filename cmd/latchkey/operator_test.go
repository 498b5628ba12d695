package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// runCmd runs `latchkey args...` with vars and stdin, returning stdout and
// the error.
func runCmd(t *testing.T, vars map[string]string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out strings.Builder
	err := run(t.Context(), append([]string{"latchkey"}, args...), func(k string) string { return vars[k] },
		func() []string { return nil }, strings.NewReader(stdin), &out, io.Discard)
	return out.String(), err
}

func mustRun(t *testing.T, vars map[string]string, stdin string, args ...string) string {
	t.Helper()
	out, err := runCmd(t, vars, stdin, args...)
	if err != nil {
		t.Fatalf("latchkey %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func exitsTwo(t *testing.T, err error, what string) {
	t.Helper()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("%s: %v; want exit code 2", what, err)
	}
}

// TestOperatorCommands runs the admin CLI against both backends: users,
// sessions and keys managed on the database directly, each change in the
// audit log "by the command line".
func TestOperatorCommands(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := "sqlite:" + filepath.Join(t.TempDir(), "auth.db")
			if backend == "postgres" {
				db = pgSchema(t)
			}
			vars := map[string]string{"LATCHKEY_DATABASE_URL": db, "LATCHKEY_LOG_LEVEL": "error"}

			mustRun(t, vars, "password123anna\n", "user", "add", "anna")
			mustRun(t, vars, "password123john\n", "user", "add", "--role", "admin", "john")
			var users []userOut
			if err := json.Unmarshal([]byte(mustRun(t, vars, "", "user", "list", "--json")), &users); err != nil || len(users) != 2 {
				t.Fatalf("user list --json: %v, %+v", err, users)
			}
			if table := mustRun(t, vars, "", "user", "list"); !strings.Contains(table, "USERNAME") || !strings.Contains(table, "anna") {
				t.Errorf("user list table:\n%s", table)
			}

			out := mustRun(t, vars, "", "user", "set-role", "--json", "anna", "admin")
			var u userOut
			if err := json.Unmarshal([]byte(out), &u); err != nil || u.Role != "admin" {
				t.Errorf("set-role: %s", out)
			}
			_, err := runCmd(t, vars, "", "user", "set-role", "anna", "root")
			exitsTwo(t, err, "set-role to an unknown role")
			_, err = runCmd(t, vars, "", "user", "disable", "nobody")
			exitsTwo(t, err, "disable an unknown user")
			mustRun(t, vars, "", "user", "disable", "anna")
			mustRun(t, vars, "", "user", "enable", "anna")

			_, err = runCmd(t, vars, "short\n", "user", "passwd", "anna")
			exitsTwo(t, err, "passwd with a password outside the policy")
			mustRun(t, vars, "password123newer\n", "user", "passwd", "anna")

			// totp-off removes an enrolment written straight to the database.
			st, err := openStore(t.Context(), db)
			if err != nil {
				t.Fatal(err)
			}
			anna, err := st.UserByUsername(t.Context(), "anna")
			if err == nil {
				err = st.PutTOTP(t.Context(), &latchkey.TOTP{UserID: anna.ID, Secret: []byte("s"), CreatedAt: anna.CreatedAt})
			}
			if err == nil {
				err = st.EnableTOTP(t.Context(), anna.ID, []byte("s"), anna.CreatedAt, 1, [][]byte{[]byte("code hash")})
			}
			if err != nil {
				t.Fatal(err)
			}
			if out := mustRun(t, vars, "", "user", "totp-off", "anna"); !strings.Contains(out, "two-step sign-in of anna is off") {
				t.Errorf("totp-off: %q", out)
			}
			if _, err := st.TOTP(t.Context(), anna.ID); !errors.Is(err, latchkey.ErrNotFound) {
				t.Errorf("the enrolment after totp-off: %v, want ErrNotFound", err)
			}
			st.Close()
			_, err = runCmd(t, vars, "", "user", "totp-off", "nobody")
			exitsTwo(t, err, "totp-off of an unknown user")

			var sessions []sessionOut
			if err := json.Unmarshal([]byte(mustRun(t, vars, "", "sessions", "list", "--user", "anna", "--json")), &sessions); err != nil || len(sessions) != 0 {
				t.Errorf("sessions list: %v %+v", err, sessions)
			}
			mustRun(t, vars, "", "sessions", "revoke", "--user", "anna")
			_, err = runCmd(t, vars, "", "sessions", "list")
			exitsTwo(t, err, "sessions list without --user")

			var keys []keyOut
			if err := json.Unmarshal([]byte(mustRun(t, vars, "", "keys", "list", "--json")), &keys); err != nil || len(keys) != 2 {
				t.Fatalf("keys list: %v %+v", err, keys)
			}
			states := func() map[string]string {
				var ks []keyOut
				json.Unmarshal([]byte(mustRun(t, vars, "", "keys", "list", "--json")), &ks)
				m := map[string]string{}
				for _, k := range ks {
					m[k.ID] = k.State
				}
				return m
			}
			before := states()
			mustRun(t, vars, "", "keys", "rotate")
			after := states()
			var active string
			for id, st := range before {
				if st == "next" && after[id] != "active" {
					t.Errorf("rotate: next key %s is %s afterwards", id, after[id])
				}
				if st == "active" {
					active = id
					if after[id] != "retired" {
						t.Errorf("rotate: active key %s is %s afterwards", id, after[id])
					}
				}
			}
			// A kid is base64url: one in 64 starts with "-", which only
			// "--" keeps from being read as a flag.
			mustRun(t, vars, "", "keys", "retire", "--", active)
			if st := states()[active]; st != "withdrawn" {
				t.Errorf("retire: key is %s", st)
			}
			_, err = runCmd(t, vars, "", "keys", "retire", "no-such-kid")
			exitsTwo(t, err, "retire an unknown kid")
			_, err = runCmd(t, vars, "", "keys", "retire", "--", "-no-such-kid")
			exitsTwo(t, err, "retire an unknown kid that starts with -")
			if err == nil || !strings.Contains(err.Error(), "no published signing key") {
				t.Errorf("retire -- -no-such-kid: %v; want the kid looked up", err)
			}
			_, err = runCmd(t, vars, "", "keys", "retire", "-no-such-kid")
			exitsTwo(t, err, "retire a kid that starts with - without --")
			if err == nil || !strings.Contains(err.Error(), "put -- before it") {
				t.Errorf("retire -no-such-kid: %v; want a hint to put it after --", err)
			}

			// Every change is audited by the command line.
			op, err := openOperator(t.Context(), &config{DatabaseURL: db, LogLevel: "error", Issuer: "http://x", Audience: "latchkey"}, env{stderr: io.Discard}, false)
			if err != nil {
				t.Fatal(err)
			}
			events, err := op.store.ListAudit(t.Context(), latchkeyAuditAll())
			op.close(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, e := range events {
				seen[string(e.Type)]++
				if (e.Type == "user_updated" || e.Type == "password_reset" || e.Type == "sessions_revoked") && !strings.Contains(e.Detail, "by the command line") {
					t.Errorf("%s detail %q does not name the command line", e.Type, e.Detail)
				}
			}
			for typ, n := range map[string]int{"user_created": 2, "user_updated": 3, "password_reset": 1, "sessions_revoked": 1, "key_rotated": 1, "key_retired": 1} {
				if seen[typ] != n {
					t.Errorf("%d %s events, want %d (all: %v)", seen[typ], typ, n, seen)
				}
			}
		})
	}
}

func latchkeyAuditAll() latchkey.AuditQuery { return latchkey.AuditQuery{Limit: 1000} }

// TestServeChecksSealedSecrets: in shared-secret mode no signing key is
// sealed, so sealed TOTP secrets are what tell a missing or wrong
// key-encryption key: the start stops with exit 2 naming the variable.
func TestServeChecksSealedSecrets(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "auth.db")
	vars := map[string]string{"LATCHKEY_DATABASE_URL": db, "LATCHKEY_LOG_LEVEL": "error"}
	mustRun(t, vars, "password123anna\n", "user", "add", "anna")
	st, err := openStore(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	anna, err := st.UserByUsername(t.Context(), "anna")
	if err == nil {
		err = st.PutTOTP(t.Context(), &latchkey.TOTP{UserID: anna.ID, Secret: []byte("sealed under some key"), Sealed: true, CreatedAt: anna.CreatedAt})
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	for name, kek := range map[string]string{"no key": "", "a key that does not open it": strings.Repeat("08", 32)} {
		serve := map[string]string{"LATCHKEY_DATABASE_URL": db, "LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_LOG_LEVEL": "error",
			"ACCESS_TOKEN_SECRET": "0123456789abcdefghijklmnopqrstuvwxyz", "LATCHKEY_KEY_ENCRYPTION_KEY": kek}
		// A start that wrongly goes on serves until this deadline.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := run(ctx, []string{"latchkey", "serve"}, func(k string) string { return serve[k] },
			func() []string { return nil }, strings.NewReader(""), io.Discard, io.Discard)
		cancel()
		exitsTwo(t, err, "serve with "+name)
		if err == nil || !strings.Contains(err.Error(), "LATCHKEY_KEY_ENCRYPTION_KEY") {
			t.Errorf("serve with %s: %v; want the variable named", name, err)
		}
	}
}
