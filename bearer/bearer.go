// Package bearer is net/http middleware that protects a resource server
// with Latchkey access tokens, following RFC 6750.
//
// [Require] verifies the Authorization: Bearer token and puts its claims in
// the request context; [RequireRole] sits inside it and checks the role. Both
// fail closed: a request reaches the handler only with verified claims.
//
// Answers, as in the Latchkey HTTP contract:
//
//   - no Bearer credentials (no Authorization header, or another scheme such
//     as Basic): 401 with WWW-Authenticate: Bearer realm="latchkey" and no
//     error attribute, as RFC 6750 §3.1 asks for a client that simply did not
//     authenticate;
//   - a Bearer token that is malformed, invalid, expired, not yet valid, of
//     the wrong issuer or audience, or refused by [WithCheck]: 401 with
//     error="invalid_token";
//   - more than one Authorization header: 400 with error="invalid_request",
//     because which one to believe is ambiguous and proxies disagree;
//   - a valid token without the required role: 403, body error
//     "insufficient_role", header error="insufficient_scope" (the RFC 6750
//     code clients understand);
//   - verification keys unavailable (the token could not be judged): 500
//     server_error, so clients retry rather than sign the user out.
//
// Every error response has the contract's JSON body
// {"error": "...", "error_description": "..."}, which [WriteError] writes and
// [MuxErrors] gives the mux's own 404 and 405 answers too. [Challenge] gives
// a handler that refuses a token itself the same WWW-Authenticate header.
// The token itself is never logged.
package bearer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/latchkey-dev/latchkey/token"
)

// Verifier checks a raw access token. *token.Verifier satisfies it; errors
// matching token.ErrInvalid mean the token is refused, any other error that
// it could not be checked.
type Verifier interface {
	Verify(ctx context.Context, raw string) (*token.Claims, error)
}

var _ Verifier = (*token.Verifier)(nil)

type options struct {
	realm   string
	check   func(ctx context.Context, c *token.Claims) error
	logger  *slog.Logger
	refused func(ctx context.Context, reason error)
}

// Option configures Require and RequireRole.
type Option func(*options)

// defaultRealm is the realm of WWW-Authenticate without [WithRealm].
const defaultRealm = "latchkey"

// WithRealm sets the realm in WWW-Authenticate (default "latchkey").
func WithRealm(realm string) Option { return func(o *options) { o.realm = realm } }

// WithCheck adds a check that runs after every successful verification,
// cached or not, such as "is this session still open". An error refuses the
// request with 401 invalid_token, because a revoked session's token is as
// good as invalid to its holder.
func WithCheck(check func(ctx context.Context, c *token.Claims) error) Option {
	return func(o *options) { o.check = check }
}

// WithLogger logs why requests were refused, at debug level (at error level
// when keys are unavailable or RequireRole is misplaced). Tokens are never
// logged. The default logs nothing.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRefusals calls f for every token Require refuses with 401, with the
// reason (a token error such as token.ErrExpired, or ErrNoCredentials),
// so that a service can count refusals by reason. f must be quick: it runs
// on the request path.
func WithRefusals(f func(ctx context.Context, reason error)) Option {
	return func(o *options) { o.refused = f }
}

// ErrNoCredentials is the reason WithRefusals is given for a request with
// no Authorization header.
var ErrNoCredentials = errNoCredentials

func newOptions(opts []Option) options {
	o := options{realm: defaultRealm}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Require returns middleware that lets a request through only with a valid
// Bearer token, and puts the token's claims in its context (see
// [ClaimsFrom]). It panics if v is nil, since a nil verifier is a wiring bug
// that must not turn into an open endpoint.
func Require(v Verifier, opts ...Option) func(http.Handler) http.Handler {
	if v == nil {
		panic("bearer: Require with a nil Verifier")
	}
	o := newOptions(opts)
	// *token.Verifier accepts nothing but base64url JWS, a subset of
	// token68, and refuses anything else as malformed. Scanning the charset
	// here too would be a second pass over every token on the hot path (as
	// long as the cached verification itself), so only other Verifiers, whose
	// parsing we do not know, get the scan before they see the string.
	_, strict := v.(*token.Verifier)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Indexing by the canonical key skips Header.Values's
			// canonicalization on every request.
			raw, perr := parseAuthorization(r.Header["Authorization"], !strict)
			switch {
			case errors.Is(perr, errNoCredentials):
				if o.refused != nil {
					o.refused(r.Context(), perr)
				}
				o.challenge(w, http.StatusUnauthorized, "", "", "invalid_token", "Authentication is required.")
				o.logger.LogAttrs(r.Context(), slog.LevelDebug, "bearer: no credentials")
				return
			case errors.Is(perr, errMultipleHeaders):
				const desc = "Send exactly one Authorization header."
				o.challenge(w, http.StatusBadRequest, "invalid_request", desc, "invalid_request", desc)
				o.logger.LogAttrs(r.Context(), slog.LevelDebug, "bearer: request refused", slog.String("reason", perr.Error()))
				return
			case perr != nil:
				o.invalid(w, r, perr, "The access token is malformed.")
				return
			}
			claims, err := v.Verify(r.Context(), raw)
			if err != nil {
				if !errors.Is(err, token.ErrInvalid) {
					o.logger.LogAttrs(r.Context(), slog.LevelError, "bearer: token could not be verified", slog.String("error", err.Error()))
					WriteError(w, http.StatusInternalServerError, "server_error", "The access token could not be checked; try again later.")
					return
				}
				o.invalid(w, r, err, describe(err))
				return
			}
			if o.check != nil {
				if err := o.check(r.Context(), claims); err != nil {
					o.invalid(w, r, err, "The access token is no longer valid.")
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(WithClaims(r.Context(), claims)))
		})
	}
}

// RequireRole returns middleware that lets a request through only when the
// claims put in its context by [Require] carry role (exactly: roles are not
// hierarchical; see token.Claims.HasRole). Without claims in the context it
// answers 401, so that forgetting Require fails closed. It panics on an empty
// role, which would otherwise match nothing and lock everyone out silently.
func RequireRole(role string, opts ...Option) func(http.Handler) http.Handler {
	if role == "" {
		panic("bearer: RequireRole with an empty role")
	}
	o := newOptions(opts)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims, ok := ClaimsFrom(r.Context())
			if !ok {
				o.logger.LogAttrs(r.Context(), slog.LevelError, "bearer: RequireRole without claims; is it inside Require?")
				o.challenge(w, http.StatusUnauthorized, "", "", "invalid_token", "Authentication is required.")
				return
			}
			if !claims.HasRole(role) {
				desc := "This action requires the " + role + " role."
				o.logger.LogAttrs(r.Context(), slog.LevelDebug, "bearer: insufficient role",
					slog.String("sub", claims.Subject), slog.String("role", claims.Role), slog.String("want", role))
				o.challenge(w, http.StatusForbidden, "insufficient_scope", desc, "insufficient_role", desc)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (o *options) invalid(w http.ResponseWriter, r *http.Request, reason error, desc string) {
	if o.refused != nil {
		o.refused(r.Context(), reason)
	}
	o.logger.LogAttrs(r.Context(), slog.LevelDebug, "bearer: token refused", slog.String("reason", reason.Error()))
	o.challenge(w, http.StatusUnauthorized, "invalid_token", desc, "invalid_token", desc)
}

// challenge writes WWW-Authenticate and the JSON error. headerCode is the
// RFC 6750 code for the header ("" for none); bodyCode and bodyDesc are the
// contract's body, which can differ (insufficient_role).
func (o *options) challenge(w http.ResponseWriter, status int, headerCode, headerDesc, bodyCode, bodyDesc string) {
	w.Header().Set("WWW-Authenticate", challengeValue(o.realm, headerCode, headerDesc))
	WriteError(w, status, bodyCode, bodyDesc)
}

// Challenge returns the WWW-Authenticate value Require sends when it refuses
// a request: the Bearer scheme with the realm and, unless code is empty, the
// RFC 6750 error code (such as "invalid_token") and description. Of opts only
// [WithRealm] matters; pass the options given to Require so that the realm
// agrees.
//
// It is for a handler behind Require that refuses a verified token itself,
// because the claims lack something only the handler knows it needs: its
// 401 then carries the same challenge as the middleware's, and a client
// that reacts to error="invalid_token" treats both alike.
func Challenge(code, description string, opts ...Option) string {
	o := options{realm: defaultRealm}
	for _, opt := range opts {
		opt(&o)
	}
	return challengeValue(o.realm, code, description)
}

func challengeValue(realm, code, description string) string {
	v := `Bearer realm=` + quote(realm)
	if code != "" {
		v += `, error=` + quote(code) + `, error_description=` + quote(description)
	}
	return v
}

// quote makes an RFC 7230 quoted-string. RFC 6750 limits error_description
// to printable ASCII without '"' and '\', and realms come from
// configuration, so anything else is dropped rather than escaped.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// describe turns a verification error into a sentence for the client. It is
// deliberately coarse: which check failed helps an attacker more than it
// helps a legitimate client, except for expiry, which tells it to refresh.
func describe(err error) string {
	switch {
	case errors.Is(err, token.ErrExpired):
		return "The access token has expired."
	case errors.Is(err, token.ErrNotYetValid):
		return "The access token is not valid yet."
	case errors.Is(err, token.ErrMalformed), errors.Is(err, token.ErrTooLarge):
		return "The access token is malformed."
	default:
		return "The access token is invalid."
	}
}

type claimsKey struct{}

// WithClaims returns a copy of ctx carrying c, as Require does. It is
// exported for tests of handlers and for custom middleware.
func WithClaims(ctx context.Context, c *token.Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims Require put in ctx. ok is false when there
// are none, which inside Require cannot happen.
func ClaimsFrom(ctx context.Context) (c *token.Claims, ok bool) {
	c, ok = ctx.Value(claimsKey{}).(*token.Claims)
	return c, ok && c != nil
}

// WriteError writes the contract's JSON error body with status. It sets
// Content-Type but not WWW-Authenticate, which only 401 and 403 answers from
// this package need.
func WriteError(w http.ResponseWriter, status int, code, description string) {
	body, err := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
	if err != nil { // two strings always marshal
		panic(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

var (
	errNoCredentials   = errors.New("no Bearer credentials")
	errMultipleHeaders = errors.New("more than one Authorization header")
	errMalformedHeader = errors.New("malformed Bearer credentials")
)

// parseAuthorization extracts the token from the Authorization header
// values: scheme "Bearer" in any case, then one or more spaces (RFC 7235's
// 1*SP), then exactly one token68 (RFC 7235 §2.1). net/http has already
// trimmed surrounding whitespace. With checkCharset false, only the absence
// of spaces is checked, and the caller must hand the token to a verifier
// that refuses non-token68 input.
func parseAuthorization(values []string, checkCharset bool) (string, error) {
	switch len(values) {
	case 0:
		return "", errNoCredentials
	case 1:
	default:
		return "", errMultipleHeaders
	}
	v := values[0]
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoCredentials
	}
	raw := strings.TrimLeft(rest, " ")
	if raw == "" || strings.IndexByte(raw, ' ') >= 0 || (checkCharset && !isToken68(raw)) {
		return "", errMalformedHeader
	}
	return raw, nil
}

// token68 marks the bytes of RFC 7235's token68 before its "=" padding. A
// table, because this runs over every byte of every request's token.
var token68 = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// isToken68 reports whether s is 1*( ALPHA / DIGIT / "-" / "." / "_" / "~"
// / "+" / "/" ) *"=".
func isToken68(s string) bool {
	if s == "" || !token68[s[0]] {
		return false
	}
	// Four at a time: a JWT is hundreds of bytes and all of them valid.
	for len(s) >= 4 && token68[s[0]] && token68[s[1]] && token68[s[2]] && token68[s[3]] {
		s = s[4:]
	}
	for len(s) > 0 && token68[s[0]] {
		s = s[1:]
	}
	for len(s) > 0 && s[0] == '=' {
		s = s[1:]
	}
	return s == ""
}
