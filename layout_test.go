package latchkey_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/latchkey-dev/latchkey"

// drivers are the modules that talk to a database or a cache, by path
// prefix. A package that links one cannot be imported without it.
var drivers = []string{
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/ncruces/go-sqlite3",
	"github.com/jackc/", // pgx and the modules it splits into
	"github.com/lib/pq",
	"github.com/redis/go-redis",
	"github.com/go-redis/",
}

// layoutRule says what one package may link: everything `go list -deps`
// reports, not only its own imports, since an import of an import is
// compiled into the user's binary all the same.
type layoutRule struct {
	name     string   // what the case proves
	pkg      string   // import path
	ours     []string // the Latchkey packages it may link
	http     bool     // may link net/http
	sql      bool     // may link database/sql
	drivers  []string // the drivers it may link, by path prefix
	modules  []string // the only other modules it may link; nil allows any but drivers
	must     string   // a dependency it has for sure, so that a listing gone empty fails
	optional bool     // being written: skipped while the package does not exist
}

// layoutRules are the package rules of the layout in docs.
var layoutRules = []layoutRule{
	{
		// database/sql/driver is allowed: it is interfaces only, and
		// github.com/google/uuid links it to implement sql.Scanner.
		name: "the domain links neither HTTP nor SQL nor a driver, and of Latchkey only token",
		pkg:  mod, ours: []string{mod + "/token"}, must: mod + "/token",
	},
	{
		name: "token links the standard library and golang-jwt only, not even HTTP",
		pkg:  mod + "/token", modules: []string{"github.com/golang-jwt/jwt/v5"}, must: "github.com/golang-jwt/jwt/v5",
	},
	{
		name: "token/jwks adds HTTP and nothing of Latchkey but token",
		pkg:  mod + "/token/jwks", ours: []string{mod + "/token"}, http: true,
		modules: []string{"github.com/golang-jwt/jwt/v5"}, must: "net/http",
	},
	{
		name: "token/revocation adds HTTP and nothing of Latchkey but token",
		pkg:  mod + "/token/revocation", ours: []string{mod + "/token"}, http: true,
		modules: []string{"github.com/golang-jwt/jwt/v5"}, must: "net/http",
	},
	{
		name: "bearer is HTTP middleware over token and nothing else",
		pkg:  mod + "/bearer", ours: []string{mod + "/token"}, http: true,
		modules: []string{"github.com/golang-jwt/jwt/v5"}, must: mod + "/token",
	},
	{
		// internal/sqlitedb is the SQLite plumbing (file, pragmas,
		// migrations, ping) that books shares with the auth store instead
		// of a second copy; it knows nothing of Latchkey.
		name: "books reaches Latchkey only through token and bearer, as a third party would",
		pkg:  mod + "/books", ours: []string{mod + "/token", mod + "/token/jwks", mod + "/token/revocation", mod + "/bearer", mod + "/internal/sqlitedb", mod + "/internal/pgdb"},
		http: true, sql: true, drivers: []string{"modernc.org/sqlite", "github.com/jackc/"}, must: mod + "/bearer",
	},
	{
		name: "internal/pgdb is PostgreSQL plumbing that links nothing of Latchkey",
		pkg:  mod + "/internal/pgdb", http: true, sql: true, drivers: []string{"github.com/jackc/"}, must: "github.com/jackc/pgx/v5",
	},
	{
		name: "internal/sqlitedb is SQLite plumbing that links nothing of Latchkey",
		pkg:  mod + "/internal/sqlitedb", sql: true, drivers: []string{"modernc.org/sqlite"}, must: "modernc.org/sqlite",
	},
	{
		name: "postgres builds on the domain with pgx, and no other backend",
		pkg:  mod + "/postgres", ours: []string{mod, mod + "/token", mod + "/internal/pgdb"}, http: true, sql: true,
		drivers: []string{"github.com/jackc/"}, must: mod, optional: true,
	},
	{
		name: "redis builds on the domain with go-redis, and no other backend",
		pkg:  mod + "/redis", ours: []string{mod, mod + "/token"}, http: true,
		drivers: []string{"github.com/redis/go-redis"}, must: mod, optional: true,
	},
}

// TestLayout keeps the package rules of docs true: the domain knows
// neither HTTP nor SQL, and the packages other people import (token,
// token/jwks, bearer, and books, written as a third party would) pull in no
// database driver and none of the auth server's own packages, nor the
// storage backends.
func TestLayout(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH")
	}
	pkgs := listPackages(t, goTool)
	for _, rule := range layoutRules {
		t.Run(rule.name, func(t *testing.T) {
			p, ok := pkgs[rule.pkg]
			if !ok {
				t.Fatalf("go list did not report %s", rule.pkg)
			}
			if p.Dir == "" && rule.optional {
				t.Skipf("%s is not written yet", rule.pkg)
			}
			if p.Error != nil {
				t.Fatalf("go list %s: %s", rule.pkg, p.Error.Err)
			}
			if !slices.Contains(p.Deps, rule.must) {
				t.Fatalf("%s does not link %s; the listing is not what this test expects", rule.pkg, rule.must)
			}
			for _, dep := range p.Deps {
				if why := rule.refuse(dep); why != "" {
					t.Errorf("%s links %s, %s", rule.pkg, dep, why)
				}
			}
		})
	}
}

// TestLayoutRulesRefuse plants a dependency in each rule, so that a rule
// that quietly allows everything cannot make TestLayout pass.
func TestLayoutRulesRefuse(t *testing.T) {
	tests := []struct {
		name    string
		pkg     string
		dep     string
		refused bool
	}{
		{"the domain refuses net/http", mod, "net/http", true},
		{"the domain refuses a net/http subpackage", mod, "net/http/httptrace", true},
		{"the domain refuses database/sql", mod, "database/sql", true},
		{"the domain allows database/sql/driver, interfaces only", mod, "database/sql/driver", false},
		{"the domain refuses the SQLite driver", mod, "modernc.org/sqlite", true},
		{"the domain refuses pgx", mod, "github.com/jackc/pgx/v5", true},
		{"the domain refuses go-redis", mod, "github.com/redis/go-redis/v9", true},
		{"the domain refuses token/jwks, which is HTTP", mod, mod + "/token/jwks", true},
		{"the domain refuses a backend", mod, mod + "/sqlite", true},
		{"the domain allows token", mod, mod + "/token", false},
		{"token refuses net/http", mod + "/token", "net/http", true},
		{"token refuses the domain", mod + "/token", mod, true},
		{"token refuses a module beyond golang-jwt", mod + "/token", "github.com/google/uuid", true},
		{"token allows the standard library", mod + "/token", "crypto/ecdsa", false},
		{"token/jwks allows net/http", mod + "/token/jwks", "net/http", false},
		{"token/jwks refuses bearer", mod + "/token/jwks", mod + "/bearer", true},
		{"token/jwks refuses the domain", mod + "/token/jwks", mod, true},
		{"bearer refuses the auth server", mod + "/bearer", mod + "/server", true},
		{"bearer refuses database/sql", mod + "/bearer", "database/sql", true},
		{"books refuses the domain", mod + "/books", mod, true},
		{"books refuses the postgres backend", mod + "/books", mod + "/postgres", true},
		{"books refuses the redis backend", mod + "/books", mod + "/redis", true},
		{"books refuses the conformance suite", mod + "/books", mod + "/storetest", true},
		{"books allows its SQLite driver", mod + "/books", "modernc.org/sqlite/lib", false},
		{"books allows pgx, for its PostgreSQL store", mod + "/books", "github.com/jackc/pgx/v5", false},
		{"books refuses go-redis", mod + "/books", "github.com/redis/go-redis/v9", true},
		{"books refuses the auth store", mod + "/books", mod + "/sqlite", true},
		{"internal/sqlitedb refuses the domain", mod + "/internal/sqlitedb", mod, true},
		{"internal/pgdb refuses the domain", mod + "/internal/pgdb", mod, true},
		{"internal/pgdb refuses the SQLite driver", mod + "/internal/pgdb", "modernc.org/sqlite", true},
		{"postgres allows the domain", mod + "/postgres", mod, false},
		{"postgres allows pgx", mod + "/postgres", "github.com/jackc/pgx/v5/pgconn", false},
		{"postgres refuses the SQLite backend", mod + "/postgres", mod + "/sqlite", true},
		{"redis allows go-redis", mod + "/redis", "github.com/redis/go-redis/v9", false},
		{"redis refuses pgx", mod + "/redis", "github.com/jackc/pgx/v5", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := slices.IndexFunc(layoutRules, func(r layoutRule) bool { return r.pkg == tc.pkg })
			if i < 0 {
				t.Fatalf("no rule for %s", tc.pkg)
			}
			why := layoutRules[i].refuse(tc.dep)
			if refused := why != ""; refused != tc.refused {
				t.Errorf("refuse(%s) = %q, want refused %v", tc.dep, why, tc.refused)
			}
		})
	}
}

// refuse says why r's package must not link dep, or "" if it may.
func (r layoutRule) refuse(dep string) string {
	switch {
	case dep == mod || strings.HasPrefix(dep, mod+"/"):
		if !slices.Contains(r.ours, dep) {
			return "a Latchkey package it must not use"
		}
	case dep == "net/http" || strings.HasPrefix(dep, "net/http/"):
		if !r.http {
			return "which is HTTP"
		}
	case dep == "database/sql":
		if !r.sql {
			return "which is SQL"
		}
	case standard(dep):
	case hasPrefix(dep, drivers):
		if !hasPrefix(dep, r.drivers) {
			return "a driver"
		}
	case r.modules != nil && !hasPrefix(dep, r.modules):
		return "a module outside " + strings.Join(r.modules, ", ")
	}
	return ""
}

// standard reports whether path is in the standard library, whose import
// paths (vendored ones included) have no dot in their first element.
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// hasPrefix reports whether path is one of prefixes or below one; a prefix
// ending in "/" names a whole owner.
func hasPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

type listedPackage struct {
	ImportPath string
	Dir        string // "" when the package does not exist
	Error      *struct{ Err string }
	Deps       []string
}

// listPackages runs go list once over every rule's package. -e makes a
// package that is not written yet an entry with an error, not a failure.
func listPackages(t *testing.T, goTool string) map[string]listedPackage {
	t.Helper()
	args := []string{"list", "-e", "-json=ImportPath,Dir,Error,Deps"}
	for _, r := range layoutRules {
		args = append(args, r.pkg)
	}
	out, err := exec.Command(goTool, args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v: %s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}
