package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// mustSigner returns an ES256 signer under a fresh key.
func mustSigner(tb testing.TB) *token.Signer {
	tb.Helper()
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		tb.Fatal(err)
	}
	kid, err := token.Thumbprint(priv.Public())
	if err != nil {
		tb.Fatal(err)
	}
	s, err := token.NewSigner(token.ES256, kid, priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// serveJWKS publishes the signers' public keys as an auth server does.
func serveJWKS(tb testing.TB, signers ...*token.Signer) string {
	tb.Helper()
	var doc token.JWKS
	for _, s := range signers {
		j, err := token.PublicJWK(s.VerificationKey())
		if err != nil {
			tb.Fatal(err)
		}
		doc.Keys = append(doc.Keys, j)
	}
	body, _ := json.Marshal(doc)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + "/.well-known/jwks.json"
}

func claimsAt(now time.Time, exp time.Duration) *token.Claims {
	return &token.Claims{
		Issuer: "http://localhost:3000", Subject: "0190d6a0-0000-7000-8000-000000000001",
		Audience: []string{"latchkey"}, IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(exp),
		ID: "jti-1", SessionID: "0190d6a0-0000-7000-8000-000000000002", Username: "anna", Role: "member",
	}
}

func mustSign(tb testing.TB, s *token.Signer, c *token.Claims) string {
	tb.Helper()
	tok, err := s.Sign(c)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// inspect runs `latchkey token inspect` with args, the token on stdin.
func inspect(tb testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	tb.Helper()
	var out, errOut bytes.Buffer
	err := runEnv(context.Background(), append([]string{"latchkey", "token", "inspect"}, args...), env{
		getenv: func(string) string { return "" }, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
	})
	code = exitCode(err, &errOut)
	return code, out.String(), errOut.String()
}

// TestTokenInspectDecodes: without a key it shows header, claims and
// times, exits 0, and never shows the signature.
func TestTokenInspectDecodes(t *testing.T) {
	s := mustSigner(t)
	now := time.Now()
	tok := mustSign(t, s, claimsAt(now.Add(-3*time.Minute), 15*time.Minute))
	sig := tok[strings.LastIndex(tok, ".")+1:]

	for name, run := range map[string]func() (int, string, string){
		"argument":        func() (int, string, string) { return inspect(t, "", tok) },
		"stdin":           func() (int, string, string) { return inspect(t, tok+"\n") },
		"Bearer on stdin": func() (int, string, string) { return inspect(t, "Bearer "+tok+"\n") },
	} {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := run()
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, want := range []string{`"alg": "ES256"`, `"kid": "` + s.KeyID() + `"`, `"username": "anna"`, `"role": "member"`, "signature: 64 bytes (not shown)"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %s:\n%s", want, out)
				}
			}
			if !regexp.MustCompile(`exp  \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  expires in 1[12]m\d+s`).MatchString(out) {
				t.Errorf("exp is not shown as a date with the time left:\n%s", out)
			}
			if !regexp.MustCompile(`iat  \S+  issued [23]m\d+s ago`).MatchString(out) {
				t.Errorf("iat is not shown as a date with its age:\n%s", out)
			}
			if strings.Contains(out+errOut, sig) {
				t.Error("the signature is printed")
			}
		})
	}

	code, out, _ := inspect(t, "", mustSign(t, s, claimsAt(now.Add(-3*time.Hour-15*time.Minute), 15*time.Minute)))
	if code != 0 || !strings.Contains(out, "expired 3h ago") {
		t.Errorf("a token expired 3 hours ago, only decoded: exit %d\n%s", code, out)
	}
}

// TestTokenInspectVerdicts: with --jwks or --secret-file, each reason a
// verifier refuses a token for is named, with exit 1; a good token exits 0.
func TestTokenInspectVerdicts(t *testing.T) {
	s := mustSigner(t)
	other := mustSigner(t)
	jwksURL := serveJWKS(t, s)
	now := time.Now()
	good := mustSign(t, s, claimsAt(now, 15*time.Minute))

	secret := "0123456789abcdef0123456789abcdef0123456789abcdef"
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)
	wrongSecretFile := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrongSecretFile, []byte("fedcba9876543210fedcba9876543210fedcba9876543210"), 0o600)
	hs, err := token.NewHMACSigner([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	withHeader := func(h string) string { return b64([]byte(h)) + "." + parts[1] + "." + parts[2] }
	var c map[string]any
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	json.Unmarshal(p, &c)
	c["role"] = "admin"
	forged, _ := json.Marshal(c)
	tampered := parts[0] + "." + b64(forged) + "." + parts[2]

	tests := []struct {
		name string
		tok  string
		args []string
		code int
		want string // in the last line of stderr, or stdout when code is 0
	}{
		{"good", good, []string{"--jwks", jwksURL}, 0, "verified: signature, exp, nbf good, with key"},
		{"good, iss and aud checked", good, []string{"--jwks", jwksURL, "--issuer", "http://localhost:3000", "--audience", "latchkey"}, 0, "verified: signature, exp, nbf, iss, aud good"},
		{"unknown kid", mustSign(t, other, claimsAt(now, 15*time.Minute)), []string{"--jwks", jwksURL}, 1, `unknown key: kid "` + other.KeyID() + `" is not in the JWKS at`},
		{"wrong alg", withHeader(`{"alg":"RS256","kid":"` + s.KeyID() + `","typ":"JWT"}`), []string{"--jwks", jwksURL}, 1, "wrong alg: the header says RS256, but key"},
		{"alg none", withHeader(`{"alg":"none","typ":"JWT"}`), []string{"--jwks", jwksURL}, 1, `wrong alg: "none" is never accepted`},
		{"bad signature", tampered, []string{"--jwks", jwksURL}, 1, "bad signature: the token was not signed by key"},
		{"expired", mustSign(t, s, claimsAt(now.Add(-3*time.Hour-15*time.Minute), 15*time.Minute)), []string{"--jwks", jwksURL}, 1, "expired 3h ago (exp "},
		{"not yet valid", mustSign(t, s, claimsAt(now.Add(time.Hour), 15*time.Minute)), []string{"--jwks", jwksURL}, 1, "not valid yet: nbf"},
		{"wrong iss", good, []string{"--jwks", jwksURL, "--issuer", "https://auth.example"}, 1, `wrong iss: the token's is "http://localhost:3000", --issuer wants "https://auth.example"`},
		{"wrong aud", good, []string{"--jwks", jwksURL, "--audience", "billing"}, 1, `wrong aud: the token's is ["latchkey"], --audience wants "billing"`},
		{"secret good", mustSign(t, hs, claimsAt(now, 15*time.Minute)), []string{"--secret-file", secretFile}, 0, "verified: signature, exp, nbf good, with key the shared secret (HS256)"},
		{"secret wrong", mustSign(t, hs, claimsAt(now, 15*time.Minute)), []string{"--secret-file", wrongSecretFile}, 1, "bad signature: the token was not signed with this secret"},
		{"a key pair's token against a secret", good, []string{"--secret-file", secretFile}, 1, "a shared secret has no kid; it was signed with a key pair: use --jwks"},
		{"a secret's token against a JWKS", mustSign(t, hs, claimsAt(now, 15*time.Minute)), []string{"--jwks", jwksURL}, 1, "the token has no kid"},
		{"not a JWT", "hello", nil, 1, "not a JWT: want three parts"},
		{"header not JSON", b64([]byte("{nope")) + "." + parts[1] + "." + parts[2], nil, 1, "not a JWT: the header segment is not JSON"},
		{"too large", parts[0] + "." + b64(append(bytes.Repeat([]byte(" "), 9000), "{}"...)) + "." + parts[2], []string{"--jwks", jwksURL}, 1, "too large: "},
		{"both keys", good, []string{"--jwks", jwksURL, "--secret-file", secretFile}, 2, "not both"},
		{"issuer without a key", good, []string{"--issuer", "x"}, 2, "give --jwks or --secret-file"},
		{"JWKS unreachable", good, []string{"--jwks", "http://127.0.0.1:1/jwks.json"}, 1, "cannot verify: fetch JWKS"},
		{"missing secret file", good, []string{"--secret-file", filepath.Join(t.TempDir(), "missing")}, 2, "--secret-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := inspect(t, tc.tok)
			if tc.args != nil {
				code, out, errOut = inspect(t, tc.tok, tc.args...)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			where := out
			if code != 0 {
				lines := strings.Split(strings.TrimSpace(errOut), "\n")
				where = lines[len(lines)-1]
			}
			if !strings.Contains(where, tc.want) {
				t.Errorf("got %q, want it to contain %q", where, tc.want)
			}
			if strings.Contains(out+errOut, secret) {
				t.Error("the secret is printed")
			}
		})
	}
}
