package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			s := newTestSigner(t, alg)
			want := validClaims()
			raw := mustSign(t, s, want)
			got, err := newTestVerifier(StaticKeys(s.VerificationKey())).Verify(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("claims:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestSignInterop checks our crypto.Signer-based signatures with
// golang-jwt's own verification, independent of Verifier.
func TestSignInterop(t *testing.T) {
	for _, alg := range algs {
		t.Run(alg, func(t *testing.T) {
			s := newTestSigner(t, alg)
			raw := mustSign(t, s, validClaims())
			key, err := s.VerificationKey().material()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return key, nil },
				jwt.WithValidMethods([]string{alg}), jwt.WithTimeFunc(func() time.Time { return fixedNow }))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Header["typ"] != "JWT" || tok.Header["alg"] != alg {
				t.Fatalf("header = %v", tok.Header)
			}
			kid, hasKid := tok.Header["kid"]
			if alg == HS256 && hasKid {
				t.Fatalf("HS256 token has kid %v", kid)
			}
			if alg != HS256 && kid != s.KeyID() {
				t.Fatalf("kid = %v, want %s", kid, s.KeyID())
			}
		})
	}
}

func TestClaimsWireFormat(t *testing.T) {
	tests := []struct {
		name string
		aud  []string
		want string
	}{
		{"one audience is a string", []string{"latchkey"}, `"aud":"latchkey"`},
		{"several audiences are an array", []string{"a", "b"}, `"aud":["a","b"]`},
		{"no audience is left out", nil, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := validClaims()
			c.Audience = tc.aud
			c.ExpiresAt = c.ExpiresAt.Add(900 * time.Millisecond)
			b, err := json.Marshal(toWire(c))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" && strings.Contains(string(b), `"aud"`) || !strings.Contains(string(b), tc.want) {
				t.Fatalf("payload %s, want %s", b, tc.want)
			}
			if !strings.Contains(string(b), fmt.Sprintf(`"exp":%d,`, fixedNow.Add(15*time.Minute).Unix())) {
				t.Fatalf("exp not in whole seconds: %s", b)
			}
		})
	}
}

func TestClaimsParse(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		wantAud []string
		wantExp int64
		wantErr bool
	}{
		{name: "aud string", payload: `{"aud":"x","exp":10}`, wantAud: []string{"x"}, wantExp: 10},
		{name: "aud array", payload: `{"aud":["x","y"],"exp":10}`, wantAud: []string{"x", "y"}, wantExp: 10},
		{name: "fractional exp is floored", payload: `{"exp":10.9}`, wantExp: 10},
		{name: "exponent notation", payload: `{"exp":1e3}`, wantExp: 1000},
		{name: "exp as string", payload: `{"exp":"10"}`, wantErr: true},
		{name: "exp beyond year 9999", payload: `{"exp":1e20}`, wantErr: true},
		{name: "aud number", payload: `{"aud":1}`, wantErr: true},
		{name: "aud array of numbers", payload: `{"aud":[1]}`, wantErr: true},
		{name: "sub number", payload: `{"sub":1}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w wireClaims
			err := json.Unmarshal([]byte(tc.payload), &w)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parsed %+v, want error", w)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := w.claims()
			if !reflect.DeepEqual(c.Audience, tc.wantAud) || c.ExpiresAt.Unix() != tc.wantExp {
				t.Fatalf("got aud %v exp %d", c.Audience, c.ExpiresAt.Unix())
			}
		})
	}
}

func TestSignRefusesIncompleteClaims(t *testing.T) {
	s := newTestSigner(t, ES256)
	noExp := validClaims()
	noExp.ExpiresAt = time.Time{}
	noSub := validClaims()
	noSub.Subject = ""
	for name, c := range map[string]*Claims{"nil": nil, "no exp": noExp, "no sub": noSub} {
		if _, err := s.Sign(c); err == nil {
			t.Errorf("%s: Sign succeeded", name)
		}
	}
}

func TestNewSignerChecksKey(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		alg  string
		kid  string
		key  crypto.Signer
	}{
		{"ES256 needs P-256", ES256, "k", p384},
		{"ES256 with an Ed25519 key", ES256, "k", mustCachedKey(t, EdDSA)},
		{"EdDSA with an ECDSA key", EdDSA, "k", mustCachedKey(t, ES256)},
		{"RS256 under 2048 bits", RS256, "k", rsa1024},
		{"RS256 with an ECDSA key", RS256, "k", mustCachedKey(t, ES256)},
		{"HS256 is not a key pair", HS256, "k", mustCachedKey(t, ES256)},
		{"unknown algorithm", "PS256", "k", mustCachedKey(t, RS256)},
		{"kid is required", ES256, "", mustCachedKey(t, ES256)},
		{"nil key", ES256, "k", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSigner(tc.alg, tc.kid, tc.key)
			if err == nil {
				t.Fatal("NewSigner succeeded")
			}
		})
	}
}

func TestNewHMACSignerRefusesWeakSecrets(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
	}{
		{"nil", nil},
		{"31 bytes, one short of the minimum", []byte("0123456789abcdef0123456789abcde")},
		{"31 zero bytes", make([]byte, 31)},
		{"32 zero bytes: long enough, not random", make([]byte, 32)},
		{"a word repeated to length", []byte(strings.Repeat("changeme", 4))},
		{"nine distinct bytes, one too few", []byte(strings.Repeat("123456789", 4))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewHMACSigner(tc.secret)
			if !errors.Is(err, ErrWeakSecret) {
				t.Fatalf("NewHMACSigner = %v, %v; want ErrWeakSecret", s, err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Error("a weak secret is not an invalid token")
			}
			if len(tc.secret) > 0 && strings.Contains(err.Error(), string(tc.secret)) {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}

func TestNewHMACSignerAcceptsTenDistinctBytes(t *testing.T) {
	if _, err := NewHMACSigner([]byte(strings.Repeat("0123456789", 4))); err != nil {
		t.Fatalf("ten distinct bytes refused: %v", err)
	}
}

func TestNewHMACSigner(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	s, err := NewHMACSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	raw := mustSign(t, s, validClaims())
	// The signer keeps its own copy: a caller reusing its buffer must not
	// change (or learn to forge for) the signer.
	secret[0] ^= 0xff
	v := newTestVerifier(StaticKeys(s.VerificationKey()))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if s.Alg() != HS256 || s.KeyID() != "" || s.VerificationKey().ID != "" {
		t.Fatalf("alg %q kid %q", s.Alg(), s.KeyID())
	}
}

func TestHasRole(t *testing.T) {
	c := &Claims{Role: "admin"}
	if !c.HasRole("admin") || c.HasRole("member") || c.HasRole("") || (*Claims)(nil).HasRole("admin") {
		t.Fatal("HasRole wrong")
	}
	if (&Claims{}).HasRole("") {
		t.Fatal("empty role matched")
	}
}
