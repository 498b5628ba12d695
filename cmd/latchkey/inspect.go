package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

const tokenUsage = `Usage: latchkey token inspect [flags] [TOKEN]

Decode an access token offline: header and claims, times as dates, and with
--jwks or --secret-file whether it verifies and, if not, why. With no TOKEN
it is read from standard input: argv is visible to other users of the machine.
Exit code 0 when it verifies (or when only decoding), 1 when it does not.
`

// cmdToken dispatches `latchkey token SUBCOMMAND`.
func cmdToken(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, tokenUsage)
		return usageErr("token: want a subcommand: inspect")
	}
	switch args[0] {
	case "inspect":
		return cmdTokenInspect(ctx, args[1:], e)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(e.stderr, tokenUsage)
		return errHelp
	}
	fmt.Fprint(e.stderr, tokenUsage)
	return usageErr("token: unknown subcommand %q (want inspect)", args[0])
}

// maxInspectInput bounds what is read from standard input: far more than
// any verifier accepts, so an oversized token is still shown and judged.
const maxInspectInput = 64 << 10

// inspectedToken is a token split and decoded, nothing verified.
type inspectedToken struct {
	raw       string
	header    json.RawMessage
	claims    json.RawMessage
	sigLen    int
	alg, kid  string
	iss       string
	aud       []string
	iat, nbf  *time.Time
	exp       *time.Time
	claimsErr error // the claims are not a JSON object
}

func cmdTokenInspect(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("latchkey token inspect", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	jwksURL := fs.String("jwks", "", "verify with the keys of the JWKS at this URL (the auth server's /.well-known/jwks.json)")
	secretFile := fs.String("secret-file", "", "verify with the shared secret (HS256) in this file")
	issuer := fs.String("issuer", "", "when verifying, also require this iss")
	audience := fs.String("audience", "", "when verifying, also require this aud")
	leeway := fs.Duration("leeway", token.DefaultLeeway, "clock skew allowed on exp and nbf, as verifiers allow it")
	fs.Usage = func() {
		fmt.Fprint(e.stderr, tokenUsage)
		fmt.Fprintln(e.stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageErr("%v", err)
	}
	switch {
	case fs.NArg() > 1:
		return usageErr("token inspect: want at most one TOKEN, got %d arguments", fs.NArg())
	case *jwksURL != "" && *secretFile != "":
		return usageErr("token inspect: give --jwks or --secret-file, not both")
	case (*issuer != "" || *audience != "") && *jwksURL == "" && *secretFile == "":
		return usageErr("token inspect: --issuer and --audience are checked when verifying; give --jwks or --secret-file too")
	case *jwksURL != "":
		if err := checkHTTPURL(*jwksURL); err != nil {
			return usageErr("token inspect: --jwks: %v", err)
		}
	}
	raw := fs.Arg(0)
	if fs.NArg() == 0 {
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxInspectInput+1))
		if err != nil {
			return fmt.Errorf("token inspect: read standard input: %w", err)
		}
		if len(b) > maxInspectInput {
			return &exitError{code: 1, err: fmt.Errorf("token inspect: standard input is over %d KiB; no verifier accepts a token that large", maxInspectInput>>10)}
		}
		raw = string(b)
	}
	raw = strings.TrimSpace(raw)
	// Pasted from an Authorization header, it may keep its scheme.
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return usageErr("token inspect: no token given, as an argument or on standard input")
	}

	// The keys are loaded before anything is printed, so that a bad flag
	// leaves only its error line.
	var keys []token.Key
	var from string
	switch {
	case *secretFile != "":
		secret, err := os.ReadFile(*secretFile)
		if err != nil {
			return usageErr("token inspect: --secret-file: %v", err)
		}
		// As ACCESS_TOKEN_SECRET is read: surrounding space is not part of it.
		s, err := token.NewHMACSigner(bytes.TrimSpace(secret))
		if err != nil {
			return usageErr("token inspect: --secret-file %s: %v", *secretFile, err)
		}
		keys, from = []token.Key{s.VerificationKey()}, "the shared secret in "+*secretFile
	case *jwksURL != "":
		var err error
		if keys, err = fetchJWKS(ctx, *jwksURL); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("token inspect: cannot verify: %w", err)}
		}
		from = "the JWKS at " + *jwksURL
	}

	t, err := decodeToken(raw)
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("token inspect: %w", err)}
	}
	now := time.Now()
	printToken(e.stdout, t, now)
	if keys == nil {
		return nil
	}
	opts := []token.Option{token.WithLeeway(*leeway), token.WithCacheSize(0), token.WithNow(func() time.Time { return now })}
	if *issuer != "" {
		opts = append(opts, token.WithIssuer(*issuer))
	}
	if *audience != "" {
		opts = append(opts, token.WithAudience(*audience))
	}
	_, verr := token.NewVerifier(token.StaticKeys(keys...), opts...).Verify(ctx, raw)
	if verr != nil {
		return &exitError{code: 1, err: fmt.Errorf("token does not verify: %s", verdict(verr, t, keys, from, *issuer, *audience, *leeway, now))}
	}
	checked := []string{"signature", "exp", "nbf"}
	if *issuer != "" {
		checked = append(checked, "iss")
	}
	if *audience != "" {
		checked = append(checked, "aud")
	}
	key := "the shared secret"
	if t.kid != "" {
		key = strconv.Quote(t.kid)
	}
	fmt.Fprintf(e.stdout, "verified: %s good, with key %s (%s) from %s\n", strings.Join(checked, ", "), key, t.alg, from)
	return nil
}

// fetchJWKS gets the key set once. A cached, refreshing Remote is what a
// resource server needs; a one-shot look needs the document as it is now.
func fetchJWKS(ctx context.Context, u string) ([]token.Key, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s answered %s", u, res.Status)
	}
	const maxJWKS = 1 << 20
	body, err := io.ReadAll(io.LimitReader(res.Body, maxJWKS+1))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	if len(body) > maxJWKS {
		return nil, fmt.Errorf("fetch JWKS: %s sent more than 1 MiB", u)
	}
	keys, err := token.ParseJWKS(body)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("the JWKS at %s has no keys (a shared-secret server publishes none: use --secret-file)", u)
	}
	return keys, nil
}

// decodeToken splits raw and decodes its header and claims without
// checking anything; the signature is only measured.
func decodeToken(raw string) (*inspectedToken, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: want three parts separated by dots, got %d", len(parts))
	}
	t := &inspectedToken{raw: raw}
	var err error
	if t.header, err = decodeSegment("header", parts[0]); err != nil {
		return nil, err
	}
	if t.claims, err = decodeSegment("claims", parts[1]); err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("not a JWT: the signature is not base64url")
	}
	t.sigLen = len(sig)
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	json.Unmarshal(t.header, &h) // a header of other types shows as it is
	t.alg, t.kid = h.Alg, h.Kid

	var c map[string]json.RawMessage
	if err := json.Unmarshal(t.claims, &c); err != nil {
		t.claimsErr = errors.New("the claims are not a JSON object")
		return t, nil
	}
	json.Unmarshal(c["iss"], &t.iss)
	var one string
	if json.Unmarshal(c["aud"], &one) == nil {
		t.aud = []string{one}
	} else {
		json.Unmarshal(c["aud"], &t.aud)
	}
	t.iat, t.nbf, t.exp = numericDate(c["iat"]), numericDate(c["nbf"]), numericDate(c["exp"])
	return t, nil
}

func decodeSegment(name, s string) (json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not a JWT: the %s segment is not base64url", name)
	}
	// Only valid JSON is printed: it cannot carry raw control bytes to the
	// terminal, since JSON strings must escape them.
	if !json.Valid(b) {
		return nil, fmt.Errorf("not a JWT: the %s segment is not JSON", name)
	}
	return b, nil
}

// numericDate reads a JWT NumericDate (seconds since the epoch, maybe
// fractional); nil when absent or not a number.
func numericDate(raw json.RawMessage) *time.Time {
	var f float64
	if raw == nil || json.Unmarshal(raw, &f) != nil {
		return nil
	}
	t := time.Unix(0, int64(f*1e9)).UTC()
	return &t
}

func printToken(w io.Writer, t *inspectedToken, now time.Time) {
	fmt.Fprintln(w, "header:")
	printJSON(w, t.header)
	fmt.Fprintln(w, "claims:")
	printJSON(w, t.claims)
	if t.claimsErr != nil {
		fmt.Fprintln(w, "  ("+t.claimsErr.Error()+")")
	}
	if t.iat != nil || t.nbf != nil || t.exp != nil {
		fmt.Fprintf(w, "times (now %s):\n", now.UTC().Format(time.RFC3339))
		if t.iat != nil {
			fmt.Fprintf(w, "  iat  %s  issued %s\n", t.iat.Format(time.RFC3339), relative(*t.iat, now))
		}
		if t.nbf != nil {
			fmt.Fprintf(w, "  nbf  %s  valid from %s\n", t.nbf.Format(time.RFC3339), relative(*t.nbf, now))
		}
		if t.exp != nil {
			state := "expires in " + human(t.exp.Sub(now))
			if !t.exp.After(now) {
				state = "expired " + human(now.Sub(*t.exp)) + " ago"
			}
			fmt.Fprintf(w, "  exp  %s  %s\n", t.exp.Format(time.RFC3339), state)
		}
	}
	// The signature is the token's proof; whoever reads the screen gets
	// no more of it than its length.
	fmt.Fprintf(w, "signature: %d bytes (not shown)\n", t.sigLen)
}

func printJSON(w io.Writer, raw json.RawMessage) {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "  ", "  "); err != nil {
		b.Reset()
		b.Write(raw)
	}
	fmt.Fprintf(w, "  %s\n", b.Bytes())
}

// relative says when t is from now: "4m12s ago", "in 3h".
func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + human(t.Sub(now))
	}
	return human(now.Sub(t)) + " ago"
}

// human writes a duration as a person reads one: seconds under a minute,
// minutes and seconds under an hour, hours and minutes under two days,
// then days and hours.
func human(d time.Duration) string {
	const day = 24 * time.Hour
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 2*day:
		if m := d % time.Hour / time.Minute; m != 0 {
			return fmt.Sprintf("%dh%dm", d/time.Hour, m)
		}
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	if h := d % day / time.Hour; h != 0 {
		return fmt.Sprintf("%dd%dh", d/day, h)
	}
	return fmt.Sprintf("%dd", d/day)
}

// verdict says, for a person, why Verify refused the token: which check
// failed, with the values it compared. It branches on token's sentinels.
func verdict(err error, t *inspectedToken, keys []token.Key, from, issuer, audience string, leeway time.Duration, now time.Time) string {
	kids := func() string {
		var ids []string
		for _, k := range keys {
			if k.ID != "" {
				ids = append(ids, strconv.Quote(k.ID))
			}
		}
		return strings.Join(ids, ", ")
	}
	keyOf := func(kid string) (token.Key, bool) {
		i := slices.IndexFunc(keys, func(k token.Key) bool { return k.ID == kid })
		if i < 0 {
			return token.Key{}, false
		}
		return keys[i], true
	}
	switch {
	case errors.Is(err, token.ErrTooLarge):
		return fmt.Sprintf("too large: %d bytes, over the %d KiB verifiers accept", len(t.raw), token.DefaultMaxTokenSize>>10)
	case errors.Is(err, token.ErrMalformed):
		return "malformed: " + strings.TrimPrefix(err.Error(), "invalid token: malformed: ")
	case errors.Is(err, token.ErrUnknownKey):
		switch {
		case t.kid == "" && kids() != "":
			return fmt.Sprintf("unknown key: the token has no kid, and %s has only keys with one (%s); a token without a kid is signed with a shared secret: use --secret-file", from, kids())
		case t.kid != "" && kids() == "":
			return fmt.Sprintf("unknown key: the token names kid %q, and a shared secret has no kid; it was signed with a key pair: use --jwks", t.kid)
		}
		return fmt.Sprintf("unknown key: kid %q is not in %s (it has %s); the key was withdrawn, has expired out of the set, or belongs to another server", t.kid, from, kids())
	case errors.Is(err, token.ErrAlgorithm):
		if strings.EqualFold(t.alg, "none") || t.alg == "" {
			return fmt.Sprintf("wrong alg: %q is never accepted; a token must be signed", t.alg)
		}
		if k, ok := keyOf(t.kid); ok {
			return fmt.Sprintf("wrong alg: the header says %s, but key %q is %s, and a key verifies only its own algorithm", t.alg, t.kid, k.Alg)
		}
		return fmt.Sprintf("wrong alg: %s is not an algorithm verifiers accept", t.alg)
	case errors.Is(err, token.ErrSignature):
		if t.kid == "" {
			return "bad signature: the token was not signed with this secret, or was changed after signing"
		}
		return fmt.Sprintf("bad signature: the token was not signed by key %q, or was changed after signing", t.kid)
	case errors.Is(err, token.ErrExpired):
		if t.exp != nil {
			return fmt.Sprintf("expired %s ago (exp %s, %s of leeway allowed)", human(now.Sub(*t.exp)), t.exp.Format(time.RFC3339), leeway)
		}
		return "expired"
	case errors.Is(err, token.ErrNotYetValid):
		if t.nbf != nil {
			return fmt.Sprintf("not valid yet: nbf %s is %s from now (%s of leeway allowed)", t.nbf.Format(time.RFC3339), human(t.nbf.Sub(now)), leeway)
		}
		return "not valid yet"
	case errors.Is(err, token.ErrIssuer):
		return fmt.Sprintf("wrong iss: the token's is %q, --issuer wants %q", t.iss, issuer)
	case errors.Is(err, token.ErrAudience):
		return fmt.Sprintf("wrong aud: the token's is %q, --audience wants %q", t.aud, audience)
	case errors.Is(err, token.ErrMissingClaim):
		return "missing claim: " + strings.TrimPrefix(err.Error(), "invalid token: missing claim: ")
	}
	return err.Error()
}
