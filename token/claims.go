package token

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the claims of a Latchkey access token. Zero values are left out
// of a signed token; ExpiresAt and Subject are required by both [Signer.Sign]
// and [Verifier.Verify].
type Claims struct {
	Issuer    string    // iss
	Subject   string    // sub: the user id
	Audience  []string  // aud: a single JSON string when it has one element, as most verifiers expect
	ExpiresAt time.Time // exp
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf
	ID        string    // jti: unique per token
	SessionID string    // sid: the login session, so a revoked session can be refused
	Username  string    // username: kept in the token so tutorial-style verifiers work unchanged
	Role      string    // role: "admin" or "member"
	// Generation (gen) is the user's token generation when the token was
	// issued; a revocation feed entry for the user refuses the tokens of
	// earlier generations. Verifiers that know nothing of it ignore it.
	Generation int64
}

// HasRole reports whether the token carries exactly role. Roles are not
// hierarchical: an endpoint open to every signed-in user needs no role check
// at all, so "admin" is deliberately not treated as including "member".
func (c *Claims) HasRole(role string) bool {
	return c != nil && role != "" && c.Role == role
}

// clone returns a copy that shares no memory with c, so cached claims cannot
// be changed through what a caller receives.
func (c *Claims) clone() *Claims {
	if len(c.Audience) <= 1 {
		// The usual single audience shares one allocation with the
		// struct: this runs on every cache hit.
		d := &struct {
			c   Claims
			aud [1]string
		}{c: *c}
		if len(c.Audience) == 1 {
			d.aud[0] = c.Audience[0]
			d.c.Audience = d.aud[:1:1]
		}
		return &d.c
	}
	d := *c
	d.Audience = slices.Clone(c.Audience)
	return &d
}

// maxNumericDate is the end of year 9999: later values are refused as
// malformed rather than overflowing time arithmetic.
const maxNumericDate = 253402300799

// numericDate is a JWT NumericDate in whole seconds. It is ours rather than
// jwt.NumericDate because that one formats according to a package-level
// variable any importer may change.
type numericDate int64

func (d numericDate) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(d), 10), nil
}

// UnmarshalJSON accepts any JSON number, as RFC 7519 allows fractions; the
// fraction is dropped because every check here works in whole seconds.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("numeric date is not a number")
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > maxNumericDate {
		return errors.New("numeric date out of range")
	}
	*d = numericDate(math.Floor(f))
	return nil
}

func (d *numericDate) time() time.Time {
	if d == nil {
		return time.Time{}
	}
	return time.Unix(int64(*d), 0).UTC()
}

func newNumericDate(t time.Time) *numericDate {
	if t.IsZero() {
		return nil
	}
	d := numericDate(t.Unix())
	return &d
}

// audience is "aud": a string or an array of strings on the wire.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	if s, ok := plainString(b); ok {
		*a = audience{s}
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*a = v
	return nil
}

// plainString reads a JSON string that has no escapes and is valid UTF-8,
// the form every real "aud" takes, without a second pass of encoding/json;
// its content is then exactly the bytes between the quotes. Anything else
// is left to encoding/json, which also decides what invalid UTF-8 becomes.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(in) {
		return "", false
	}
	return string(in), true
}

// wireClaims is the JSON form of Claims. It implements jwt.Claims only so
// that jwt.Parser accepts it; the checks themselves are ours (see
// Verifier.check), so cached and fresh verifications follow one rule.
type wireClaims struct {
	Issuer    string       `json:"iss,omitempty"`
	Subject   string       `json:"sub,omitempty"`
	Audience  audience     `json:"aud,omitempty"`
	ExpiresAt *numericDate `json:"exp,omitempty"`
	NotBefore *numericDate `json:"nbf,omitempty"`
	IssuedAt  *numericDate `json:"iat,omitempty"`
	ID        string       `json:"jti,omitempty"`
	SessionID string       `json:"sid,omitempty"`
	Username  string       `json:"username,omitempty"`
	Role      string       `json:"role,omitempty"`
	Gen       int64        `json:"gen,omitempty"`
}

var _ jwt.Claims = (*wireClaims)(nil)

func toWire(c *Claims) *wireClaims {
	return &wireClaims{
		Issuer:    c.Issuer,
		Subject:   c.Subject,
		Audience:  audience(c.Audience),
		ExpiresAt: newNumericDate(c.ExpiresAt),
		NotBefore: newNumericDate(c.NotBefore),
		IssuedAt:  newNumericDate(c.IssuedAt),
		ID:        c.ID,
		SessionID: c.SessionID,
		Username:  c.Username,
		Role:      c.Role,
		Gen:       c.Generation,
	}
}

func (w *wireClaims) claims() *Claims {
	return &Claims{
		Issuer:     w.Issuer,
		Subject:    w.Subject,
		Audience:   []string(w.Audience),
		ExpiresAt:  w.ExpiresAt.time(),
		IssuedAt:   w.IssuedAt.time(),
		NotBefore:  w.NotBefore.time(),
		ID:         w.ID,
		SessionID:  w.SessionID,
		Username:   w.Username,
		Role:       w.Role,
		Generation: w.Gen,
	}
}

func jwtDate(d *numericDate) *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return jwt.NewNumericDate(d.time())
}

func (w *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) { return jwtDate(w.ExpiresAt), nil }
func (w *wireClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return jwtDate(w.IssuedAt), nil }
func (w *wireClaims) GetNotBefore() (*jwt.NumericDate, error)      { return jwtDate(w.NotBefore), nil }
func (w *wireClaims) GetIssuer() (string, error)                   { return w.Issuer, nil }
func (w *wireClaims) GetSubject() (string, error)                  { return w.Subject, nil }
func (w *wireClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings(w.Audience), nil
}
