package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/token"
)

// config is every setting of the contract's configuration table, parsed.
type config struct {
	Addr             string
	BooksAddr        string
	DatabaseURL      string
	BooksDatabaseURL string
	Issuer           string
	Audience         string
	SigningAlg       string
	Secret           []byte
	AccessTTL        time.Duration
	RefreshIdleTTL   time.Duration
	SessionMaxAge    time.Duration
	ReuseGrace       time.Duration
	RegistrationOpen bool
	AdminUsername    string
	AdminPassword    string
	AuthURL          string
	CORSOrigins      []string
	LogLevel         string
}

// setting is one row of the configuration table: its variable, the flag of
// the same meaning, its default and how to parse it.
type setting struct {
	env     string
	aliases []string
	flag    string
	def     string
	usage   string
	parse   func(c *config, v string) error
}

// dataDir is where the default SQLite files live.
const dataDir = "latchkey-data"

var settings = []setting{
	{env: "LATCHKEY_ADDR", flag: "addr", def: ":3000", usage: "auth server listen address",
		parse: func(c *config, v string) error { c.Addr = v; return nonEmpty(v) }},
	{env: "LATCHKEY_BOOKS_ADDR", flag: "books-addr", def: ":4000", usage: "books server listen address",
		parse: func(c *config, v string) error { c.BooksAddr = v; return nonEmpty(v) }},
	{env: "LATCHKEY_DATABASE_URL", flag: "database-url", def: "sqlite:" + dataDir + "/latchkey.db", usage: "auth database: sqlite:PATH or postgres://...",
		parse: func(c *config, v string) error { c.DatabaseURL = v; return checkDatabaseURL(v) }},
	{env: "LATCHKEY_BOOKS_DATABASE_URL", flag: "books-database-url", def: "sqlite:" + dataDir + "/books.db", usage: "books database: sqlite:PATH",
		parse: func(c *config, v string) error { c.BooksDatabaseURL = v; return checkDatabaseURL(v) }},
	{env: "LATCHKEY_ISSUER", flag: "issuer", def: "http://localhost:3000", usage: "iss of issued tokens and base URL of discovery",
		parse: func(c *config, v string) error { c.Issuer = strings.TrimRight(v, "/"); return checkHTTPURL(v) }},
	{env: "LATCHKEY_AUDIENCE", flag: "audience", def: "latchkey", usage: "aud of issued tokens, required by verifiers",
		parse: func(c *config, v string) error { c.Audience = v; return nonEmpty(v) }},
	{env: "LATCHKEY_SIGNING_ALG", flag: "signing-alg", def: token.ES256, usage: "ES256, EdDSA or RS256 (HS256 is implied by a shared secret)",
		parse: func(c *config, v string) error {
			switch v {
			case token.ES256, token.EdDSA, token.RS256, token.HS256:
				c.SigningAlg = v
				return nil
			}
			return fmt.Errorf("unknown algorithm %q (want ES256, EdDSA or RS256)", v)
		}},
	{env: "ACCESS_TOKEN_SECRET", aliases: []string{"TOKEN_SECRET"}, flag: "access-token-secret", usage: "shared secret for HS256 mode, at least 32 bytes (prefer the environment: flags show in ps)",
		parse: func(c *config, v string) error {
			if v == "" {
				return nil
			}
			if err := checkSecret(v); err != nil {
				return err
			}
			c.Secret = []byte(v)
			return nil
		}},
	{env: "LATCHKEY_ACCESS_TTL", flag: "access-ttl", def: "15m", usage: "access token lifetime",
		parse: func(c *config, v string) (err error) { c.AccessTTL, err = parseDuration(v, false); return }},
	{env: "LATCHKEY_REFRESH_IDLE_TTL", flag: "refresh-idle-ttl", def: "7d", usage: "refresh token lifetime since last use",
		parse: func(c *config, v string) (err error) { c.RefreshIdleTTL, err = parseDuration(v, false); return }},
	{env: "LATCHKEY_SESSION_MAX_AGE", flag: "session-max-age", def: "30d", usage: "absolute session lifetime",
		parse: func(c *config, v string) (err error) { c.SessionMaxAge, err = parseDuration(v, false); return }},
	{env: "LATCHKEY_REFRESH_REUSE_GRACE", flag: "refresh-reuse-grace", def: "10s", usage: "grace window for a retired refresh token; 0 disables",
		parse: func(c *config, v string) (err error) { c.ReuseGrace, err = parseDuration(v, true); return }},
	{env: "LATCHKEY_REGISTRATION", flag: "registration", def: "open", usage: "open or closed",
		parse: func(c *config, v string) error {
			switch v {
			case "open", "closed":
				c.RegistrationOpen = v == "open"
				return nil
			}
			return fmt.Errorf("want open or closed, got %q", v)
		}},
	{env: "LATCHKEY_ADMIN_USERNAME", flag: "admin-username", usage: "create this admin at start if absent",
		parse: func(c *config, v string) error { c.AdminUsername = v; return nil }},
	{env: "LATCHKEY_ADMIN_PASSWORD", flag: "admin-password", usage: "password of LATCHKEY_ADMIN_USERNAME (prefer the environment)",
		parse: func(c *config, v string) error { c.AdminPassword = v; return nil }},
	{env: "LATCHKEY_AUTH_URL", flag: "auth-url", def: "http://localhost:3000", usage: "where the books server finds the auth server's JWKS",
		parse: func(c *config, v string) error { c.AuthURL = strings.TrimRight(v, "/"); return checkHTTPURL(v) }},
	{env: "LATCHKEY_CORS_ORIGINS", flag: "cors-origins", usage: "comma-separated origins allowed to call the books server from a browser (default: the issuer's origin)",
		parse: func(c *config, v string) error {
			for o := range strings.SplitSeq(v, ",") {
				if o = strings.TrimSpace(o); o != "" {
					if err := checkHTTPURL(o); err != nil {
						return err
					}
					c.CORSOrigins = append(c.CORSOrigins, strings.TrimRight(o, "/"))
				}
			}
			return nil
		}},
	{env: "LATCHKEY_LOG_LEVEL", flag: "log-level", def: "info", usage: "debug, info, warn or error",
		parse: func(c *config, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return fmt.Errorf("want debug, info, warn or error, got %q", v)
		}},
}

// loadConfig parses the settings named in which: flags in args win over the
// environment, which wins over a .env file in the working directory, which
// wins over the defaults. A bad value is an exit-2 error naming its
// variable. It returns the remaining arguments.
func loadConfig(name string, which []string, args []string, getenv func(string) string, stderr io.Writer) (*config, []string, error) {
	fs := flag.NewFlagSet("latchkey "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	chosen := make([]setting, 0, len(which))
	flags := make(map[string]*string)
	for _, s := range settings {
		if !contains(which, s.env) {
			continue
		}
		chosen = append(chosen, s)
		usage := s.usage + " (env " + s.env + ")"
		flags[s.env] = fs.String(s.flag, "", usage)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: latchkey %s [flags]\n\n%s\n\nFlags (each also an environment variable; flag > environment > .env > default):\n", name, commandHelp[name])
		fs.PrintDefaults()
		fmt.Fprintln(stderr, "\nDefaults:")
		for _, s := range chosen {
			if s.def != "" {
				fmt.Fprintf(stderr, "  %s=%s\n", s.env, s.def)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, errHelp
		}
		return nil, nil, usageErr("%v", err)
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	dotenv, err := readDotEnv(".env")
	if err != nil {
		return nil, nil, usageErr(".env: %v", err)
	}
	c := &config{}
	for _, s := range chosen {
		v, from := s.def, "default"
		if d, ok := lookup(dotenv, s); ok {
			v, from = d, ".env"
		}
		if e, ok := lookupEnv(getenv, s); ok {
			v, from = e, "environment"
		}
		if setFlags[s.flag] {
			v, from = *flags[s.env], "flag -"+s.flag
		}
		if err := s.parse(c, strings.TrimSpace(v)); err != nil {
			return nil, nil, usageErr("%s (%s): %v", s.env, from, err)
		}
	}
	if (c.AdminUsername == "") != (c.AdminPassword == "") && contains(which, "LATCHKEY_ADMIN_USERNAME") {
		return nil, nil, usageErr("LATCHKEY_ADMIN_USERNAME and LATCHKEY_ADMIN_PASSWORD must be set together")
	}
	if c.AdminUsername != "" {
		if err := latchkey.ValidateUsername(c.AdminUsername); err != nil {
			return nil, nil, usageErr("LATCHKEY_ADMIN_USERNAME: %v", err)
		}
		if err := latchkey.ValidatePassword(c.AdminPassword); err != nil {
			return nil, nil, usageErr("LATCHKEY_ADMIN_PASSWORD: %v", err)
		}
	}
	if c.Secret != nil {
		c.SigningAlg = token.HS256
	} else if c.SigningAlg == token.HS256 && contains(which, "ACCESS_TOKEN_SECRET") {
		return nil, nil, usageErr("LATCHKEY_SIGNING_ALG: HS256 needs ACCESS_TOKEN_SECRET")
	}
	if len(c.CORSOrigins) == 0 && c.Issuer != "" {
		u, _ := url.Parse(c.Issuer)
		c.CORSOrigins = []string{u.Scheme + "://" + u.Host}
	}
	return c, fs.Args(), nil
}

// errHelp reports that usage was printed on request.
var errHelp = &exitError{code: 0, err: errors.New("help requested")}

func lookupEnv(getenv func(string) string, s setting) (string, bool) {
	for _, name := range append([]string{s.env}, s.aliases...) {
		if v := getenv(name); v != "" {
			return v, true
		}
	}
	return "", false
}

func lookup(m map[string]string, s setting) (string, bool) {
	for _, name := range append([]string{s.env}, s.aliases...) {
		if v, ok := m[name]; ok && v != "" {
			return v, true
		}
	}
	return "", false
}

// readDotEnv reads KEY=VALUE lines with godotenv, which handles quoting,
// comments and export prefixes the way other tools do. A missing file is
// not an error.
func readDotEnv(path string) (map[string]string, error) {
	m, err := godotenv.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	return m, err
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// parseDuration accepts Go durations ("30s", "15m", "6h") and whole days
// ("7d"). Only the grace window may be zero.
func parseDuration(v string, zeroOK bool) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("invalid duration %q (use 30s, 15m, 6h or 7d)", v)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("invalid duration %q (use 30s, 15m, 6h or 7d)", v)
		}
	}
	if d < 0 || (d == 0 && !zeroOK) {
		return 0, fmt.Errorf("duration %q must be positive", v)
	}
	return d, nil
}

func checkHTTPURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL, got %q", v)
	}
	return nil
}

func checkDatabaseURL(v string) error {
	switch {
	case strings.HasPrefix(v, "sqlite:") && len(v) > len("sqlite:"):
		return nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return errors.New("PostgreSQL is not supported by this build yet; use sqlite:PATH")
	}
	return fmt.Errorf("want sqlite:PATH, got %q", redactURL(v))
}

// redactURL keeps passwords in database URLs out of error messages.
func redactURL(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

// checkSecret refuses, at start and naming the variable, a secret that
// token's HMAC signer would refuse: a weak shared secret lets anyone mint
// admin tokens. The rule itself is token's, so library users get it too.
func checkSecret(v string) error {
	_, err := token.NewHMACSigner([]byte(v))
	if errors.Is(err, token.ErrWeakSecret) {
		return fmt.Errorf("%w; make one with `latchkey secret`", err)
	}
	return err
}

// sqlitePath returns the file of a sqlite: URL.
func sqlitePath(dbURL string) string { return strings.TrimPrefix(dbURL, "sqlite:") }

// allSettings lists every variable, for `latchkey help`.
func allSettings() []string {
	names := make([]string, 0, len(settings))
	for _, s := range settings {
		names = append(names, s.env)
	}
	sort.Strings(names)
	return names
}
