package bearer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	signer   *token.Signer
	verifier *token.Verifier
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := token.NewSigner(token.ES256, "k1", priv)
	if err != nil {
		tb.Fatal(err)
	}
	v := token.NewVerifier(token.StaticKeys(s.VerificationKey()),
		token.WithIssuer("https://auth.test"), token.WithAudience("latchkey"),
		token.WithNow(func() time.Time { return now }))
	return &fixture{signer: s, verifier: v}
}

func (f *fixture) token(tb testing.TB, mutate func(c *token.Claims)) string {
	tb.Helper()
	c := &token.Claims{
		Issuer: "https://auth.test", Subject: "user-1", Audience: []string{"latchkey"},
		ExpiresAt: now.Add(15 * time.Minute), IssuedAt: now, SessionID: "s1", Username: "anna", Role: "member",
	}
	if mutate != nil {
		mutate(c)
	}
	raw, err := f.signer.Sign(c)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// echo answers 200 with the subject from the context, proving the claims
// got there.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, ok := bearer.ClaimsFrom(r.Context())
	if !ok {
		http.Error(w, "no claims", http.StatusTeapot)
		return
	}
	w.Write([]byte(c.Subject))
})

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func do(tb testing.TB, h http.Handler, headers ...string) (*httptest.ResponseRecorder, errorBody) {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, "/books", nil)
	for _, v := range headers {
		req.Header.Add("Authorization", v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body errorBody
	if rec.Code != http.StatusOK {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			tb.Fatalf("Content-Type = %q", ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" || body.Description == "" {
			tb.Fatalf("error body %q: %v", rec.Body.String(), err)
		}
	}
	return rec, body
}

func TestRequire(t *testing.T) {
	f := newFixture(t)
	good := f.token(t, nil)
	expired := f.token(t, func(c *token.Claims) { c.ExpiresAt = now.Add(-time.Hour) })
	wrongAud := f.token(t, func(c *token.Claims) { c.Audience = []string{"other"} })
	none := strings.Join([]string{"eyJhbGciOiJub25lIn0", strings.Split(good, ".")[1], ""}, ".")

	const (
		noError      = `Bearer realm="latchkey"`
		invalidToken = `Bearer realm="latchkey", error="invalid_token", error_description=`
	)
	tests := []struct {
		name       string
		headers    []string
		wantStatus int
		wantAuth   string // prefix of WWW-Authenticate
		wantError  string
	}{
		{name: "valid", headers: []string{"Bearer " + good}, wantStatus: 200},
		{name: "scheme in any case", headers: []string{"bEaReR " + good}, wantStatus: 200},
		{name: "several spaces after the scheme", headers: []string{"Bearer   " + good}, wantStatus: 200},
		{name: "no header", wantStatus: 401, wantAuth: noError, wantError: "invalid_token"},
		{name: "empty header", headers: []string{""}, wantStatus: 401, wantAuth: noError, wantError: "invalid_token"},
		{name: "Basic scheme", headers: []string{"Basic dXNlcjpwYXNz"}, wantStatus: 401, wantAuth: noError, wantError: "invalid_token"},
		{name: "token without scheme", headers: []string{good}, wantStatus: 401, wantAuth: noError, wantError: "invalid_token"},
		{name: "scheme without token", headers: []string{"Bearer"}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "two tokens", headers: []string{"Bearer " + good + " " + good}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "tab separator", headers: []string{"Bearer\t" + good}, wantStatus: 401, wantAuth: noError, wantError: "invalid_token"},
		{name: "not token68", headers: []string{"Bearer " + good + "!"}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "quoted token", headers: []string{`Bearer "` + good + `"`}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "garbage token", headers: []string{"Bearer abc"}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "alg none", headers: []string{"Bearer " + none}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "expired", headers: []string{"Bearer " + expired}, wantStatus: 401, wantAuth: invalidToken + `"The access token has expired."`, wantError: "invalid_token"},
		{name: "wrong audience", headers: []string{"Bearer " + wrongAud}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "oversized", headers: []string{"Bearer " + good + strings.Repeat("A", 9000)}, wantStatus: 401, wantAuth: invalidToken, wantError: "invalid_token"},
		{name: "two Authorization headers", headers: []string{"Bearer " + good, "Bearer " + good}, wantStatus: 400,
			wantAuth: `Bearer realm="latchkey", error="invalid_request"`, wantError: "invalid_request"},
	}
	h := bearer.Require(f.verifier)(echo)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, body := do(t, h, tc.headers...)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d (%s)", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantStatus == 200 {
				if rec.Body.String() != "user-1" {
					t.Fatalf("body %q", rec.Body)
				}
				return
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.wantAuth) ||
				(tc.wantAuth == noError && got != noError) {
				t.Fatalf("WWW-Authenticate = %q, want %q...", got, tc.wantAuth)
			}
			if body.Error != tc.wantError {
				t.Fatalf("error = %q, want %q", body.Error, tc.wantError)
			}
		})
	}
}

func TestRequireRole(t *testing.T) {
	f := newFixture(t)
	member := f.token(t, nil)
	admin := f.token(t, func(c *token.Claims) { c.Role = "admin" })
	h := bearer.Require(f.verifier)(bearer.RequireRole("admin")(echo))

	rec, _ := do(t, h, "Bearer "+admin)
	if rec.Code != 200 {
		t.Fatalf("admin: %d", rec.Code)
	}
	rec, body := do(t, h, "Bearer "+member)
	if rec.Code != 403 || body.Error != "insufficient_role" {
		t.Fatalf("member: %d %+v", rec.Code, body)
	}
	if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer realm="latchkey", error="insufficient_scope", error_description="This action requires the admin role."`; got != want {
		t.Fatalf("WWW-Authenticate = %q, want %q", got, want)
	}
	rec, _ = do(t, h)
	if rec.Code != 401 {
		t.Fatalf("no token: %d", rec.Code)
	}
}

func TestRequireRoleWithoutRequireFailsClosed(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	h := bearer.RequireRole("admin", bearer.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))(echo)
	rec, body := do(t, h, "Bearer "+f.token(t, func(c *token.Claims) { c.Role = "admin" }))
	if rec.Code != 401 || body.Error != "invalid_token" {
		t.Fatalf("%d %+v", rec.Code, body)
	}
	if !strings.Contains(logs.String(), "inside Require") {
		t.Fatalf("misplacement not logged: %q", logs.String())
	}
}

func TestWithCheck(t *testing.T) {
	f := newFixture(t)
	revoked := errors.New("session revoked")
	var seen []string
	check := func(_ context.Context, c *token.Claims) error {
		seen = append(seen, c.SessionID)
		if c.SessionID == "dead" {
			return revoked
		}
		return nil
	}
	h := bearer.Require(f.verifier, bearer.WithCheck(check))(echo)
	live := f.token(t, nil)
	dead := f.token(t, func(c *token.Claims) { c.SessionID = "dead" })
	for range 2 { // the second round is served from the verifier's cache
		if rec, _ := do(t, h, "Bearer "+live); rec.Code != 200 {
			t.Fatalf("live session: %d", rec.Code)
		}
		rec, body := do(t, h, "Bearer "+dead)
		if rec.Code != 401 || body.Error != "invalid_token" || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("revoked session: %d %+v", rec.Code, body)
		}
	}
	if len(seen) != 4 {
		t.Fatalf("check ran %d times, want on every request", len(seen))
	}
}

type brokenVerifier struct{}

func (brokenVerifier) Verify(context.Context, string) (*token.Claims, error) {
	return nil, token.ErrKeysUnavailable
}

func TestKeysUnavailableIsServerError(t *testing.T) {
	rec, body := do(t, bearer.Require(brokenVerifier{})(echo), "Bearer abc.def.ghi")
	if rec.Code != 500 || body.Error != "server_error" || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("%d %+v %q", rec.Code, body, rec.Header().Get("WWW-Authenticate"))
	}
}

func TestLogsNeverContainTheToken(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := bearer.Require(f.verifier, bearer.WithLogger(logger),
		bearer.WithCheck(func(context.Context, *token.Claims) error { return errors.New("revoked") }))(bearer.RequireRole("admin", bearer.WithLogger(logger))(echo))
	good := f.token(t, nil)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	for _, raw := range []string{good, tampered, good + "!", good + " " + good} {
		do(t, h, "Bearer "+raw)
	}
	do(t, h, "Bearer "+good, "Bearer "+good)
	if logs.Len() == 0 {
		t.Fatal("nothing logged at debug")
	}
	for _, p := range parts {
		if strings.Contains(logs.String(), p) {
			t.Fatalf("log contains part of the token:\n%s", logs.String())
		}
	}
}

func TestWithRealm(t *testing.T) {
	h := bearer.Require(newFixture(t).verifier, bearer.WithRealm("books \"api\"\n"))(echo)
	rec, _ := do(t, h)
	if got := rec.Header().Get("WWW-Authenticate"); got != `Bearer realm="books api"` {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
}

func TestClaimsContext(t *testing.T) {
	if _, ok := bearer.ClaimsFrom(context.Background()); ok {
		t.Fatal("claims in an empty context")
	}
	if _, ok := bearer.ClaimsFrom(bearer.WithClaims(context.Background(), nil)); ok {
		t.Fatal("nil claims reported present")
	}
	c := &token.Claims{Subject: "x"}
	if got, ok := bearer.ClaimsFrom(bearer.WithClaims(context.Background(), c)); !ok || got != c {
		t.Fatal("claims lost")
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	bearer.WriteError(rec, http.StatusTooManyRequests, "rate_limited", `Slow "down".`)
	if rec.Code != 429 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v", rec.Code, rec.Header())
	}
	if got, want := rec.Body.String(), `{"error":"rate_limited","error_description":"Slow \"down\"."}`+"\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
}

func TestConstructorsPanicOnWiringBugs(t *testing.T) {
	for name, fn := range map[string]func(){
		"nil verifier": func() { bearer.Require(nil) },
		"empty role":   func() { bearer.RequireRole("") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			fn()
		}()
	}
}

func TestChallenge(t *testing.T) {
	tests := []struct {
		name        string
		code        string
		description string
		opts        []bearer.Option
		want        string
	}{
		{name: "no error attribute", want: `Bearer realm="latchkey"`},
		{name: "invalid token", code: "invalid_token", description: "The access token does not name a user.",
			want: `Bearer realm="latchkey", error="invalid_token", error_description="The access token does not name a user."`},
		{name: "realm from the options", code: "invalid_token", description: "No.", opts: []bearer.Option{bearer.WithRealm("books")},
			want: `Bearer realm="books", error="invalid_token", error_description="No."`},
		{name: "quotes, backslashes and controls dropped", code: "invalid_token", description: "A \"b\" \\ c\n",
			want: `Bearer realm="latchkey", error="invalid_token", error_description="A b  c"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := bearer.Challenge(tc.code, tc.description, tc.opts...); got != tc.want {
				t.Errorf("Challenge = %q, want %q", got, tc.want)
			}
		})
	}
	// The value is the one Require itself sends.
	rec, _ := do(t, bearer.Require(newFixture(t).verifier)(echo), "Bearer abc")
	if got, want := rec.Header().Get("WWW-Authenticate"), bearer.Challenge("invalid_token", "The access token is malformed."); got != want {
		t.Errorf("Require sent %q, Challenge gives %q", got, want)
	}
}
