// Package interop_test proves that access tokens issued by a real Latchkey
// auth server are accepted by the Node verifiers the Express tutorials use
// (jsonwebtoken in shared-secret mode, jose against the JWKS URL), and that
// tampered, foreign and unsigned tokens are refused by them.
//
// The Node side lives in interop/node (verify.mjs, package-lock.json). It is
// installed with `npm ci` in interop/node; without node on PATH or without
// interop/node/node_modules the tests skip, unless LATCHKEY_REQUIRE_NODE=1,
// when they fail instead (CI sets it after `npm ci`).
package interop_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/server"
	"github.com/latchkey-dev/latchkey/token"
)

const (
	audience = "latchkey"

	adminName     = "john"
	adminPassword = "password123admin"
	memberName    = "anna"
	memberPass    = "password123member"

	// Each node run is bounded by this; a cold start of node plus one JWKS
	// fetch over loopback takes well under a second.
	nodeTimeout = 30 * time.Second
	httpTimeout = 10 * time.Second
)

// verifyScript is verify.mjs relative to this package's directory, which is
// the working directory of `go test`.
var verifyScript = filepath.Join("node", "verify.mjs")

// requireNode returns the path of node, or skips the test (fails it when
// LATCHKEY_REQUIRE_NODE=1) when node or the installed Node packages are
// missing.
func requireNode(t *testing.T) string {
	t.Helper()
	missing := func(reason string) {
		t.Helper()
		if os.Getenv("LATCHKEY_REQUIRE_NODE") == "1" {
			t.Fatalf("LATCHKEY_REQUIRE_NODE=1 but %s", reason)
		}
		t.Skipf("skipping Node interop test: %s (set LATCHKEY_REQUIRE_NODE=1 to make this a failure)", reason)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	for _, pkg := range []string{"jsonwebtoken", "jose"} {
		if _, err := os.Stat(filepath.Join("node", "node_modules", pkg, "package.json")); err != nil {
			missing("interop/node/node_modules/" + pkg + " is missing: run `npm ci` in interop/node")
		}
	}
	if _, err := os.Stat(verifyScript); err != nil {
		t.Fatalf("verify script: %v", err)
	}
	return node
}

// nodeResult is one run of verify.mjs.
type nodeResult struct {
	code           int
	stdout, stderr string
}

func (r nodeResult) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout: " + r.stdout + "\nstderr: " + r.stderr
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// runNode runs `node verify.mjs args...` bounded by nodeTimeout.
func runNode(t *testing.T, node string, args ...string) nodeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{verifyScript}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := nodeResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("node %v: timed out after %v: %v\n%s", args[0], nodeTimeout, ctx.Err(), res)
	case err == nil:
		res.code = 0
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	default:
		t.Fatalf("run node: %v", err)
	}
	return res
}

// authServer is a real Latchkey auth server on loopback.
type authServer struct {
	url  string
	svc  *latchkey.Service
	keys *latchkey.KeyRing
}

// newService builds a Service on a fresh SQLite database with john (admin)
// and anna (member), on the wall clock, since Node checks the tokens'
// times against its own. secret selects shared-secret mode; otherwise
// alg's keys are generated and stored.
func newService(t *testing.T, alg string, secret []byte, issuer string) (*latchkey.Service, *latchkey.KeyRing) {
	t.Helper()
	e := latchkeytest.New(t, latchkeytest.Options{Alg: alg, Secret: secret, RealTime: true, Config: func(c *latchkey.Config) {
		c.Issuer, c.Audience = issuer, audience
	}})
	e.MustUser(t, adminName, adminPassword, latchkey.RoleAdmin)
	e.MustUser(t, memberName, memberPass, latchkey.RoleMember)
	return e.Service, e.Keys
}

// startAuthServer starts the auth server on httptest. The listener is made
// first so that the issuer can be the server's own URL, as in production.
func startAuthServer(t *testing.T, alg string, secret []byte) *authServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	svc, keys := newService(t, alg, secret, url)
	h, err := server.New(server.Config{Service: svc, Keys: keys})
	if err != nil {
		srv.Close()
		t.Fatalf("server.New: %v", err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	if srv.URL != url {
		t.Fatalf("httptest URL %q differs from the issuer %q", srv.URL, url)
	}
	return &authServer{url: url, svc: svc, keys: keys}
}

func (a *authServer) jwksURL() string { return a.url + "/.well-known/jwks.json" }

// do sends one request to the auth server and returns status and body.
func (a *authServer) do(t *testing.T, method, path, bearer string, body any) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), httpTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(must(json.Marshal(body)))
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// login logs in over HTTP and returns the access token.
func (a *authServer) login(t *testing.T, username, password string) string {
	t.Helper()
	status, hdr, body := a.do(t, http.MethodPost, "/login", "", map[string]string{"username": username, "password": password})
	if status != http.StatusOK {
		t.Fatalf("POST /login as %s: status %d, body %s", username, status, body)
	}
	if cc := hdr.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("POST /login: Cache-Control %q, want no-store", cc)
	}
	var out struct {
		AccessToken  string `json:"accessToken"`
		RefreshToken string `json:"refreshToken"`
		TokenType    string `json:"tokenType"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("POST /login: body %s: %v", body, err)
	}
	if out.AccessToken == "" || out.TokenType != "Bearer" {
		t.Fatalf("POST /login: body %s: want accessToken and tokenType Bearer", body)
	}
	return out.AccessToken
}

// userID asks GET /me who the token belongs to.
func (a *authServer) userID(t *testing.T, access string) string {
	t.Helper()
	status, _, body := a.do(t, http.MethodGet, "/me", access, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /me: status %d, body %s", status, body)
	}
	var me struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &me); err != nil || me.ID == "" {
		t.Fatalf("GET /me: body %s: %v", body, err)
	}
	return me.ID
}

// --- JWT surgery for the negative cases ---

var b64 = base64.RawURLEncoding

// splitJWT returns the decoded header and payload and the raw parts.
func splitJWT(t *testing.T, tok string) (header, payload map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3: %q", len(parts), tok)
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("token part %d is not base64url: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("token part %d is not JSON: %v", i, err)
		}
	}
	return header, payload, parts
}

func encodePart(v any) string { return b64.EncodeToString(must(json.Marshal(v))) }

// tamperPayload keeps header and signature and rewrites the payload.
func tamperPayload(t *testing.T, tok string, change func(map[string]any)) string {
	t.Helper()
	_, payload, parts := splitJWT(t, tok)
	change(payload)
	return parts[0] + "." + encodePart(payload) + "." + parts[2]
}

// withHeader keeps payload and signature and rewrites the header.
func withHeader(t *testing.T, tok string, change func(map[string]any)) string {
	t.Helper()
	header, _, parts := splitJWT(t, tok)
	change(header)
	return encodePart(header) + "." + parts[1] + "." + parts[2]
}

// algNone returns tok's payload under {"alg":"none"} with an empty
// signature; keepKid keeps the original kid so a JWKS lookup could match.
func algNone(t *testing.T, tok, alg string, keepKid bool) string {
	t.Helper()
	header, _, parts := splitJWT(t, tok)
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if keepKid && header["kid"] != nil {
		h["kid"] = header["kid"]
	}
	return encodePart(h) + "." + parts[1] + "."
}

// hmacSigned re-signs tok's payload with HS256 under key, keeping the kid:
// the algorithm-confusion attack (an HMAC keyed with public key material).
func hmacSigned(t *testing.T, tok string, key []byte) string {
	t.Helper()
	header, _, parts := splitJWT(t, tok)
	h := map[string]any{"alg": "HS256", "typ": "JWT"}
	if header["kid"] != nil {
		h["kid"] = header["kid"]
	}
	input := encodePart(h) + "." + parts[1]
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// --- assertions ---

// checkHeader checks the JOSE header the contract promises.
func checkHeader(t *testing.T, tok, alg string, wantKid bool) {
	t.Helper()
	header, _, _ := splitJWT(t, tok)
	if header["alg"] != alg {
		t.Errorf("header alg = %v, want %s", header["alg"], alg)
	}
	if header["typ"] != "JWT" {
		t.Errorf("header typ = %v, want JWT", header["typ"])
	}
	kid, hasKid := header["kid"].(string)
	switch {
	case wantKid && (!hasKid || kid == ""):
		t.Errorf("header has no kid: %v", header)
	case !wantKid && header["kid"] != nil:
		t.Errorf("header has kid %v in shared-secret mode", header["kid"])
	}
}

// wantAccepted asserts node exit 0 and the claims of john's token.
func wantAccepted(t *testing.T, res nodeResult, issuer, userID string) map[string]any {
	t.Helper()
	if res.code != 0 {
		t.Fatalf("node rejected a token Latchkey issued:\n%s", res)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &claims); err != nil {
		t.Fatalf("node printed no JSON payload: %v\n%s", err, res)
	}
	wantString := func(name, want string) {
		t.Helper()
		got, ok := claims[name].(string)
		switch {
		case !ok || got == "":
			t.Errorf("payload %s = %#v, want a non-empty string", name, claims[name])
		case want != "" && got != want:
			t.Errorf("payload %s = %q, want %q", name, got, want)
		}
	}
	wantString("role", "admin")
	wantString("username", adminName)
	wantString("sub", userID)
	wantString("sid", "")
	wantString("jti", "")
	wantString("iss", issuer)
	switch aud := claims["aud"].(type) {
	case string:
		if aud != audience {
			t.Errorf("payload aud = %q, want %q", aud, audience)
		}
	case []any:
		if !slices.Contains(aud, any(audience)) {
			t.Errorf("payload aud = %v, want it to contain %q", aud, audience)
		}
	default:
		t.Errorf("payload aud = %#v, want %q", claims["aud"], audience)
	}
	for _, name := range []string{"exp", "iat"} {
		if _, ok := claims[name].(float64); !ok {
			t.Errorf("payload %s = %#v, want a NumericDate", name, claims[name])
		}
	}
	return claims
}

// verificationErrors are the error classes jsonwebtoken and jose throw for
// a token they refuse. Anything else (a failed JWKS fetch, a JWKS jose cannot
// parse, a crash) is not a rejection of the token, and must not let a
// negative case pass by accident.
var verificationErrors = []string{
	// jsonwebtoken
	"JsonWebTokenError", "TokenExpiredError", "NotBeforeError",
	// jose
	"JWSSignatureVerificationFailed", "JWSInvalid", "JWTInvalid", "JWTClaimValidationFailed",
	"JWTExpired", "JOSEAlgNotAllowed", "JOSENotSupported", "JWKSNoMatchingKey", "JWKSMultipleMatchingKeys",
}

func wantRejected(t *testing.T, what string, res nodeResult) {
	t.Helper()
	if res.code != 1 {
		t.Errorf("%s: node exit %d, want 1 (rejected)\n%s", what, res.code, res)
		return
	}
	if strings.TrimSpace(res.stdout) != "" {
		t.Errorf("%s: rejected but printed a payload: %s", what, res.stdout)
	}
	// verify.mjs prints "rejected: <ErrorName> (<code>): <message>".
	name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(res.stderr), "rejected: "), ":")
	name, _, _ = strings.Cut(name, " ")
	if !slices.Contains(verificationErrors, name) {
		t.Errorf("%s: node failed, but not with a token verification error:\n%s", what, res)
		return
	}
	t.Logf("%s: %s", what, strings.TrimSpace(res.stderr))
}

// --- tests ---

// TestJSONWebTokenSharedSecret: HS256 tokens verify with jsonwebtoken as the
// tutorials call it, and forged ones do not.
func TestJSONWebTokenSharedSecret(t *testing.T) {
	node := requireNode(t)
	secret := "interop-test-shared-secret-0123456789abcdef" // ≥ 32 bytes
	srv := startAuthServer(t, token.HS256, []byte(secret))

	access := srv.login(t, adminName, adminPassword)
	checkHeader(t, access, token.HS256, false)
	id := srv.userID(t, access)
	wantAccepted(t, runNode(t, node, "hs256", secret, access), srv.url, id)

	member := srv.login(t, memberName, memberPass)
	if res := runNode(t, node, "hs256", secret, member); res.code != 0 {
		t.Fatalf("member token rejected:\n%s", res)
	}

	// Another auth server with its own secret, same issuer.
	otherSecret := "another-servers-shared-secret-fedcba9876543210"
	otherSvc, _ := newService(t, token.HS256, []byte(otherSecret), srv.url)
	otherPair, err := otherSvc.Login(t.Context(), adminName, adminPassword, latchkey.Client{IP: "127.0.0.1"})
	if err != nil {
		t.Fatalf("login on the other server: %v", err)
	}

	cases := []struct {
		name, secret, token string
	}{
		{"tampered payload (member made admin)", secret, tamperPayload(t, member, func(p map[string]any) { p["role"] = "admin" })},
		{"tampered payload (username changed)", secret, tamperPayload(t, access, func(p map[string]any) { p["username"] = "mallory" })},
		{"verified with the wrong secret", "wrong-secret-wrong-secret-wrong-secret-0000", access},
		{"signed by another server's secret", secret, otherPair.AccessToken},
		{"alg none", secret, algNone(t, access, "none", false)},
		{"alg NONE", secret, algNone(t, access, "NONE", false)},
		{"alg none, original signature kept", secret, withHeader(t, access, func(h map[string]any) { h["alg"] = "none" })},
		{"signature stripped", secret, strings.Join(strings.Split(access, ".")[:2], ".") + "."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantRejected(t, c.name, runNode(t, node, "hs256", c.secret, c.token))
		})
	}
}

// TestJoseRemoteJWKS: ES256, EdDSA and RS256 tokens verify with jose
// against the server's JWKS URL, with issuer and audience checked, and
// forged ones do not.
func TestJoseRemoteJWKS(t *testing.T) {
	node := requireNode(t)
	for _, alg := range []string{token.ES256, token.EdDSA, token.RS256} {
		t.Run(alg, func(t *testing.T) {
			srv := startAuthServer(t, alg, nil)
			jwks := srv.jwksURL()
			verify := func(tok string) nodeResult {
				return runNode(t, node, "jwks", jwks, srv.url, audience, tok)
			}

			access := srv.login(t, adminName, adminPassword)
			checkHeader(t, access, alg, true)
			id := srv.userID(t, access)
			wantAccepted(t, verify(access), srv.url, id)

			member := srv.login(t, memberName, memberPass)
			if res := verify(member); res.code != 0 {
				t.Fatalf("member token rejected:\n%s", res)
			}

			// Another auth server with its own key of the same algorithm
			// and the same issuer: only the key differs.
			otherSvc, _ := newService(t, alg, nil, srv.url)
			otherPair, err := otherSvc.Login(t.Context(), adminName, adminPassword, latchkey.Client{IP: "127.0.0.1"})
			if err != nil {
				t.Fatalf("login on the other server: %v", err)
			}
			ourHeader, _, _ := splitJWT(t, access)
			realKid := ourHeader["kid"]
			foreignSameKid := withHeader(t, otherPair.AccessToken, func(h map[string]any) { h["kid"] = realKid })

			// The published JWKS, as an attacker would fetch it, to key
			// the algorithm-confusion forgery.
			status, _, jwksBody := srv.do(t, http.MethodGet, "/.well-known/jwks.json", "", nil)
			if status != http.StatusOK {
				t.Fatalf("GET jwks: status %d, body %s", status, jwksBody)
			}

			cases := []struct {
				name  string
				res   func() nodeResult
				token string
			}{
				{name: "tampered payload (member made admin)", token: tamperPayload(t, member, func(p map[string]any) { p["role"] = "admin" })},
				{name: "tampered payload (username changed)", token: tamperPayload(t, access, func(p map[string]any) { p["username"] = "mallory" })},
				{name: "signed by another server's key (its own kid)", token: otherPair.AccessToken},
				{name: "signed by another server's key (our kid)", token: foreignSameKid},
				{name: "alg none", token: algNone(t, access, "none", true)},
				{name: "alg none without kid", token: algNone(t, access, "none", false)},
				{name: "alg HS256 keyed with the published JWKS", token: hmacSigned(t, access, jwksBody)},
				{name: "signature stripped", token: strings.Join(strings.Split(access, ".")[:2], ".") + "."},
				{name: "wrong audience expected", token: access, res: func() nodeResult {
					return runNode(t, node, "jwks", jwks, srv.url, "some-other-api", access)
				}},
				{name: "wrong issuer expected", token: access, res: func() nodeResult {
					return runNode(t, node, "jwks", jwks, "https://issuer.invalid", audience, access)
				}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					run := c.res
					if run == nil {
						run = func() nodeResult { return verify(c.token) }
					}
					wantRejected(t, c.name, run())
				})
			}
		})
	}
}
