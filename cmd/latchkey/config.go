package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/metrics"
	"github.com/latchkey-dev/latchkey/server"
	"github.com/latchkey-dev/latchkey/token"
	"github.com/latchkey-dev/latchkey/token/revocation"
)

// config is every setting Latchkey implements, parsed.
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
	BooksURL         string
	CookieSecure     bool
	RedisURL         string
	TrustedProxies   []netip.Prefix
	KeyRotation      time.Duration
	EncryptionKey    []byte
	PreviousSecret   []byte
	PasswordHash     latchkey.Argon2Params
	AuditRetention   time.Duration
	MetricsAddr      string
	RevocationPoll   time.Duration

	// metrics is set by startMetrics when MetricsAddr is.
	metrics  *metrics.Metrics
	LogLevel string

	// Which values were derived rather than given, so that listenedOn can
	// put in the port a listener on port 0 really got.
	issuerFromAddr, authURLFromAddr, corsFromIssuer, booksURLFromAddr bool
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

// defaultOrigin is where the contract puts the auth server.
const defaultOrigin = "http://localhost:3000"

var settings = []setting{
	{env: "LATCHKEY_ADDR", flag: "addr", def: ":3000", usage: "auth server listen address; when given, also the default of LATCHKEY_ISSUER and LATCHKEY_AUTH_URL",
		parse: func(c *config, v string) error { c.Addr = v; return checkAddr(v) }},
	{env: "LATCHKEY_BOOKS_ADDR", flag: "books-addr", def: ":4000", usage: "books server listen address",
		parse: func(c *config, v string) error { c.BooksAddr = v; return checkAddr(v) }},
	{env: "LATCHKEY_DATABASE_URL", flag: "database-url", def: "sqlite:" + dataDir + "/latchkey.db", usage: "auth database: sqlite:PATH or postgres://...",
		parse: func(c *config, v string) error { c.DatabaseURL = v; return checkDatabaseURL(v) }},
	{env: "LATCHKEY_BOOKS_DATABASE_URL", flag: "books-database-url", def: "sqlite:" + dataDir + "/books.db", usage: "books database: sqlite:PATH or postgres://...",
		parse: func(c *config, v string) error { c.BooksDatabaseURL = v; return checkDatabaseURL(v) }},
	{env: "LATCHKEY_ISSUER", flag: "issuer", def: defaultOrigin, usage: "iss of issued tokens and base URL of discovery (default: from LATCHKEY_ADDR when that is given)",
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
	{env: "LATCHKEY_ACCESS_TTL", flag: "access-ttl", def: formatDuration(latchkey.DefaultAccessTTL), usage: "access token lifetime",
		parse: func(c *config, v string) (err error) { c.AccessTTL, err = parseDuration(v, false); return }},
	{env: "LATCHKEY_REFRESH_IDLE_TTL", flag: "refresh-idle-ttl", def: formatDuration(latchkey.DefaultRefreshIdleTTL), usage: "refresh token lifetime since last use",
		parse: func(c *config, v string) (err error) { c.RefreshIdleTTL, err = parseDuration(v, false); return }},
	{env: "LATCHKEY_SESSION_MAX_AGE", flag: "session-max-age", def: formatDuration(latchkey.DefaultSessionMaxAge), usage: "absolute session lifetime",
		parse: func(c *config, v string) (err error) { c.SessionMaxAge, err = parseDuration(v, false); return }},
	{env: "LATCHKEY_REFRESH_REUSE_GRACE", flag: "refresh-reuse-grace", def: formatDuration(latchkey.DefaultReuseGrace), usage: "grace window for a retired refresh token; 0 disables",
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
	{env: "LATCHKEY_AUTH_URL", flag: "auth-url", def: defaultOrigin, usage: "where the books server finds the auth server's JWKS (default: from LATCHKEY_ADDR when that is given)",
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
	{env: "LATCHKEY_BOOKS_URL", flag: "books-url", def: "http://localhost:4000", usage: "where the sign-in page finds the books server (latchkey demo: from LATCHKEY_BOOKS_ADDR when that is given)",
		parse: func(c *config, v string) error { c.BooksURL = strings.TrimRight(v, "/"); return checkHTTPURL(v) }},
	// Unset, it follows the issuer: an https issuer always gets Secure.
	{env: "LATCHKEY_COOKIE_SECURE", flag: "cookie-secure", usage: "true or false: the Secure attribute of the refresh cookie (default: true when the issuer is https)",
		parse: func(c *config, v string) error {
			switch v {
			case "", "false":
				c.CookieSecure = false
				return nil
			case "true":
				c.CookieSecure = true
				return nil
			}
			return fmt.Errorf("want true or false, got %q", v)
		}},
	{env: "LATCHKEY_REDIS_URL", flag: "redis-url", usage: "Redis for login throttling shared by every replica (redis://, rediss://)",
		parse: func(c *config, v string) error {
			if v != "" && !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") && !strings.HasPrefix(v, "unix://") {
				return fmt.Errorf("want redis://, rediss:// or unix://, got %q", redactURL(v))
			}
			c.RedisURL = v
			return nil
		}},
	{env: "LATCHKEY_TRUSTED_PROXIES", flag: "trusted-proxies", usage: "comma-separated CIDR ranges of proxies whose X-Forwarded-For is believed",
		parse: func(c *config, v string) (err error) { c.TrustedProxies, err = server.ParseTrustedProxies(v); return }},
	{env: "LATCHKEY_KEY_ROTATION", flag: "key-rotation", def: "0", usage: "automatic signing-key rotation interval; 0 rotates only on `latchkey keys rotate`",
		parse: func(c *config, v string) (err error) { c.KeyRotation, err = parseDuration(v, true); return }},
	{env: "LATCHKEY_KEY_ENCRYPTION_KEY", flag: "key-encryption-key", usage: "32 bytes, hex or base64: seals private keys and TOTP secrets at rest (prefer the environment)",
		parse: func(c *config, v string) (err error) {
			if v == "" {
				return nil
			}
			c.EncryptionKey, err = latchkey.ParseEncryptionKey(v)
			return
		}},
	{env: "ACCESS_TOKEN_SECRET_PREVIOUS", flag: "access-token-secret-previous", usage: "shared-secret mode: the previous secret, accepted for verification only while the secret changes",
		parse: func(c *config, v string) error {
			if v == "" {
				return nil
			}
			if err := checkSecret(v); err != nil {
				return err
			}
			c.PreviousSecret = []byte(v)
			return nil
		}},
	{env: "LATCHKEY_PASSWORD_HASH", flag: "password-hash", def: latchkey.DefaultArgon2.String(), usage: "argon2id cost, m=KiB,t=passes,p=lanes; below OWASP's minimum is refused; `latchkey calibrate` suggests one",
		parse: func(c *config, v string) (err error) {
			if c.PasswordHash, err = latchkey.ParseArgon2Params(v); err != nil {
				return err
			}
			return c.PasswordHash.CheckMinimum()
		}},
	{env: "LATCHKEY_AUDIT_RETENTION", flag: "audit-retention", def: formatDuration(latchkey.DefaultAuditRetention), usage: "how long audit events are kept",
		parse: func(c *config, v string) (err error) { c.AuditRetention, err = parseDuration(v, false); return }},
	{env: "LATCHKEY_REVOCATION_POLL", flag: "revocation-poll", def: formatDuration(revocation.DefaultPoll), usage: "how often the books server fetches the auth server's revocation feed (LATCHKEY_AUTH_URL); 0 turns it off",
		parse: func(c *config, v string) (err error) { c.RevocationPoll, err = parseDuration(v, true); return }},
	{env: "LATCHKEY_METRICS_ADDR", flag: "metrics-addr", usage: "serve /metrics (Prometheus) on this address only; unset, no metrics",
		parse: func(c *config, v string) error {
			c.MetricsAddr = v
			if v == "" {
				return nil
			}
			return checkAddr(v)
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

// loadConfig parses the settings cmd reads: flags in args win over the
// environment, which wins over a .env file in the working directory, which
// wins over the defaults. A bad value is an exit-2 error naming its
// variable. own, when not nil, adds the command's own flags, which are not
// settings. loadConfig returns the remaining arguments.
func loadConfig(cmd command, args []string, e env, own func(*flag.FlagSet)) (*config, []string, error) {
	fs := flag.NewFlagSet("latchkey "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if own != nil {
		own(fs)
	}
	chosen := make([]setting, 0, len(cmd.settings))
	flags := make(map[string]*string)
	for _, s := range settings {
		if !slices.Contains(cmd.settings, s.env) {
			continue
		}
		if d, ok := cmd.defaults[s.env]; ok {
			s.def = d
		}
		chosen = append(chosen, s)
		flags[s.env] = fs.String(s.flag, "", s.usage+" (env "+s.env+")")
	}
	fs.Usage = func() { printCommandUsage(e.stderr, cmd, fs, chosen) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, errHelp
		}
		if cmd.args != "" && strings.HasPrefix(err.Error(), "flag provided but not defined") {
			// A kid is base64url, so one in 64 starts with "-", and a
			// username may too: the flag package takes either for a flag.
			return nil, nil, usageErr("%v (if that is an argument, not a flag, put -- before it)", err)
		}
		return nil, nil, usageErr("%v", err)
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	dotenv, err := readDotEnv(".env")
	if err != nil {
		return nil, nil, usageErr(".env: %v", err)
	}
	var environ []string
	if e.environ != nil {
		environ = e.environ()
	}
	for _, w := range unknownKeyWarnings(dotenv, environ) {
		fmt.Fprintln(e.stderr, "latchkey: warning:", w)
	}

	// Every setting gets at least its default, so that a command reading
	// only a few still has a complete config to build a Service from.
	c := &config{}
	given := map[string]bool{}
	for _, s := range settings {
		v, from := s.def, "default"
		if i := slices.IndexFunc(chosen, func(ch setting) bool { return ch.env == s.env }); i >= 0 {
			v = chosen[i].def
			if d, ok := lookup(dotenv, s); ok {
				v, from = d, ".env"
			}
			if ev, ok := lookupEnv(e.getenv, s); ok {
				v, from = ev, "environment"
			}
			if setFlags[s.flag] {
				v, from = *flags[s.env], "flag -"+s.flag
			}
			given[s.env] = from != "default"
		}
		if err := s.parse(c, strings.TrimSpace(v)); err != nil {
			return nil, nil, usageErr("%s (%s): %v", s.env, from, err)
		}
	}
	if (c.AdminUsername == "") != (c.AdminPassword == "") && slices.Contains(cmd.settings, "LATCHKEY_ADMIN_USERNAME") {
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
	} else if c.SigningAlg == token.HS256 && slices.Contains(cmd.settings, "ACCESS_TOKEN_SECRET") {
		return nil, nil, usageErr("LATCHKEY_SIGNING_ALG: HS256 needs ACCESS_TOKEN_SECRET")
	}
	// Moving the auth server to another port must not leave its tokens
	// naming the old one, nor the books server looking for keys there.
	if given["LATCHKEY_ADDR"] {
		origin, err := originOf(c.Addr, "")
		if err != nil {
			return nil, nil, usageErr("LATCHKEY_ADDR: %v", err)
		}
		if !given["LATCHKEY_ISSUER"] {
			c.Issuer, c.issuerFromAddr = origin, true
		}
		if !given["LATCHKEY_AUTH_URL"] {
			c.AuthURL, c.authURLFromAddr = origin, true
		}
	}
	if len(c.CORSOrigins) == 0 {
		u, _ := url.Parse(c.Issuer)
		c.CORSOrigins, c.corsFromIssuer = []string{u.Scheme + "://" + u.Host}, true
	}
	// The demo's page must find the books server where it really listens.
	if given["LATCHKEY_BOOKS_ADDR"] && !given["LATCHKEY_BOOKS_URL"] && slices.Contains(cmd.settings, "LATCHKEY_BOOKS_URL") {
		origin, err := originOf(c.BooksAddr, "")
		if err != nil {
			return nil, nil, usageErr("LATCHKEY_BOOKS_ADDR: %v", err)
		}
		c.BooksURL, c.booksURLFromAddr = origin, true
	}
	// An https issuer's cookie is Secure whatever the setting says: over
	// plain HTTP the refresh token would travel in the clear.
	if u, _ := url.Parse(c.Issuer); u.Scheme == "https" {
		if given["LATCHKEY_COOKIE_SECURE"] && !c.CookieSecure {
			return nil, nil, usageErr("LATCHKEY_COOKIE_SECURE: false with the https issuer %s; the refresh cookie of an https server is always Secure", c.Issuer)
		}
		c.CookieSecure = true
	}
	return c, fs.Args(), nil
}

// listenedOn completes, once the auth server listens at a, the values
// derived from an LATCHKEY_ADDR with port 0, which only the listener knows.
func (c *config) listenedOn(a net.Addr) {
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port != "0" {
		return
	}
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return
	}
	origin, err := originOf(c.Addr, port)
	if err != nil {
		return
	}
	if c.issuerFromAddr {
		c.Issuer = origin
		if c.corsFromIssuer {
			c.CORSOrigins = []string{origin}
		}
	}
	if c.authURLFromAddr {
		c.AuthURL = origin
	}
}

// booksListenedOn is listenedOn for the books server's listener, whose
// port the sign-in page needs when LATCHKEY_BOOKS_ADDR has port 0.
func (c *config) booksListenedOn(a net.Addr) {
	if _, port, err := net.SplitHostPort(c.BooksAddr); err != nil || port != "0" || !c.booksURLFromAddr {
		return
	}
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return
	}
	if origin, err := originOf(c.BooksAddr, port); err == nil {
		c.BooksURL = origin
	}
}

// originOf is the URL at which a server listening on addr is reached from
// this machine: localhost when it listens on every interface, else the
// host as given. A port other than "" replaces the address's own.
func originOf(addr, port string) (string, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port == "" {
		port = p
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	origin := "http://" + net.JoinHostPort(host, port)
	if err := checkHTTPURL(origin); err != nil {
		return "", err
	}
	return origin, nil
}

// printCommandUsage is the -h of a command: what it does, its own flags and
// settings, and the defaults that apply to it.
func printCommandUsage(w io.Writer, cmd command, fs *flag.FlagSet, chosen []setting) {
	fmt.Fprintf(w, "Usage: latchkey %s %s\n\n%s\n\n", cmd.name, cmd.args, cmd.help)
	fmt.Fprintln(w, "Flags (a setting's flag is also an environment variable; flag > environment > .env > default):")
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nDefaults:")
	for _, s := range chosen {
		if s.def != "" {
			fmt.Fprintf(w, "  %s=%s\n", s.env, s.def)
		}
	}
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

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

// checkAddr wants host:port, the form net.Listen takes and the issuer is
// derived from; the host may be empty, for every interface.
func checkAddr(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("want host:port or :port, got %q", v)
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

// formatDuration writes d as the settings are written, so that a default
// shown by -h is one a user can type: whole days as 7d, else Go's form
// without its zero units (15m, not 15m0s).
func formatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
		return nil
	}
	return fmt.Errorf("want sqlite:PATH or postgres://..., got %q", redactURL(v))
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
