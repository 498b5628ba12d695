package jwtlibs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	xjwt "github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/latchkey-dev/latchkey/token"
)

const (
	issuer   = "http://localhost:3000"
	audience = "latchkey"
	leeway   = 30 * time.Second
)

var algs = []string{token.ES256, token.EdDSA, token.RS256, token.HS256}

// libs in the order rows are printed.
var libs = []string{"golang-jwt", "jwx", "go-jose", "latchkey-uncached", "latchkey-cached"}

// claims is what a verifier hands the application.
type claims struct {
	Subject, SessionID, Username, Role string
}

// values are the claims of one access token as Service.pair sets them.
type values struct {
	sub, jti, sid, username, role string
	iat, exp                      time.Time
}

func newValues() values {
	now := time.Now().Truncate(time.Second)
	return values{
		sub: "01938d2e-8a4b-7c8e-9f3a-2b1c4d5e6f70", jti: rand.Text(), sid: "01938d2e-9b5c-7d9f-8e4b-3c2d5e6f7081",
		username: "anna", role: "member", iat: now, exp: now.Add(15 * time.Minute),
	}
}

// fixture is one algorithm's keys and a token signed by Latchkey.
type fixture struct {
	alg    string
	kid    string // empty for HS256, as in shared-secret mode
	priv   any    // what the libraries sign with
	pub    any    // what they verify with
	signer *token.Signer
	raw    string // Latchkey's token
}

var (
	fixturesOnce sync.Once
	fixtures     map[string]*fixture
	fixturesErr  error
)

func getFixture(tb testing.TB, alg string) *fixture {
	tb.Helper()
	fixturesOnce.Do(func() { fixtures, fixturesErr = makeFixtures() })
	if fixturesErr != nil {
		tb.Fatal(fixturesErr)
	}
	return fixtures[alg]
}

func makeFixtures() (map[string]*fixture, error) {
	out := map[string]*fixture{}
	for _, alg := range algs {
		f := &fixture{alg: alg}
		var err error
		if alg == token.HS256 {
			secret := []byte(rand.Text() + rand.Text()) // 52 bytes
			f.priv, f.pub = secret, secret
			f.signer, err = token.NewHMACSigner(secret)
		} else {
			var k crypto.Signer
			if k, err = token.GenerateKey(alg); err != nil {
				return nil, err
			}
			if f.kid, err = token.Thumbprint(k.Public()); err != nil {
				return nil, err
			}
			f.priv, f.pub = k, k.Public()
			f.signer, err = token.NewSigner(alg, f.kid, k)
		}
		if err != nil {
			return nil, err
		}
		if f.raw, err = f.signer.Sign(latchkeyClaims(newValues())); err != nil {
			return nil, err
		}
		out[alg] = f
	}
	return out, nil
}

func latchkeyClaims(v values) *token.Claims {
	return &token.Claims{
		Issuer: issuer, Subject: v.sub, Audience: []string{audience},
		ExpiresAt: v.exp, IssuedAt: v.iat, NotBefore: v.iat,
		ID: v.jti, SessionID: v.sid, Username: v.username, Role: v.role,
	}
}

// impl is one library's sign and verify for one algorithm, with whatever
// it idiomatically prepares once (parsers, signers, imported keys) done.
type impl struct {
	sign   func(values) (string, error)
	verify func(raw string) (claims, error)
}

func newImpl(tb testing.TB, lib string, f *fixture, aud string) impl {
	tb.Helper()
	var (
		im  impl
		err error
	)
	switch lib {
	case "golang-jwt":
		im = golangJWT(f, aud)
	case "jwx":
		im, err = jwx(f, aud)
	case "go-jose":
		im, err = goJose(f, aud)
	case "latchkey-uncached", "latchkey-cached":
		opts := []token.Option{token.WithIssuer(issuer), token.WithAudience(aud), token.WithLeeway(leeway)}
		if lib == "latchkey-uncached" {
			opts = append(opts, token.WithCacheSize(0))
		}
		v := token.NewVerifier(token.StaticKeys(f.signer.VerificationKey()), opts...)
		ctx := context.Background()
		im = impl{
			sign: func(vs values) (string, error) { return f.signer.Sign(latchkeyClaims(vs)) },
			verify: func(raw string) (claims, error) {
				c, err := v.Verify(ctx, raw)
				if err != nil {
					return claims{}, err
				}
				return claims{c.Subject, c.SessionID, c.Username, c.Role}, nil
			},
		}
	default:
		tb.Fatalf("unknown library %s", lib)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return im
}

// --- golang-jwt/jwt v5 ---

type gjClaims struct {
	gjwt.RegisteredClaims
	SessionID string `json:"sid"`
	Username  string `json:"username"`
	Role      string `json:"role"`
}

func golangJWT(f *fixture, aud string) impl {
	method := gjwt.GetSigningMethod(f.alg)
	parser := gjwt.NewParser(
		gjwt.WithValidMethods([]string{f.alg}),
		gjwt.WithIssuer(issuer),
		gjwt.WithAudience(aud),
		gjwt.WithExpirationRequired(),
		gjwt.WithLeeway(leeway),
	)
	keyFunc := func(*gjwt.Token) (any, error) { return f.pub, nil }
	return impl{
		sign: func(v values) (string, error) {
			t := gjwt.NewWithClaims(method, gjClaims{
				RegisteredClaims: gjwt.RegisteredClaims{
					Issuer: issuer, Subject: v.sub, Audience: gjwt.ClaimStrings{audience},
					ExpiresAt: gjwt.NewNumericDate(v.exp), IssuedAt: gjwt.NewNumericDate(v.iat),
					NotBefore: gjwt.NewNumericDate(v.iat), ID: v.jti,
				},
				SessionID: v.sid, Username: v.username, Role: v.role,
			})
			if f.kid != "" {
				t.Header["kid"] = f.kid
			}
			return t.SignedString(f.priv)
		},
		verify: func(raw string) (claims, error) {
			var c gjClaims
			if _, err := parser.ParseWithClaims(raw, &c, keyFunc); err != nil {
				return claims{}, err
			}
			return claims{c.Subject, c.SessionID, c.Username, c.Role}, nil
		},
	}
}

// --- lestrrat-go/jwx v3 ---

func jwxAlg(alg string) jwa.SignatureAlgorithm {
	switch alg {
	case token.ES256:
		return jwa.ES256()
	case token.EdDSA:
		return jwa.EdDSA()
	case token.RS256:
		return jwa.RS256()
	}
	return jwa.HS256()
}

func jwx(f *fixture, aud string) (impl, error) {
	alg := jwxAlg(f.alg)
	// A resource server gets its keys as JWKs (from the JWKS), kid included.
	pub, err := jwk.Import(f.pub)
	if err != nil {
		return impl{}, err
	}
	priv, err := jwk.Import(f.priv)
	if err != nil {
		return impl{}, err
	}
	if f.kid != "" {
		if err := pub.Set(jwk.KeyIDKey, f.kid); err != nil {
			return impl{}, err
		}
		if err := priv.Set(jwk.KeyIDKey, f.kid); err != nil {
			return impl{}, err
		}
	}
	parseOpts := []xjwt.ParseOption{
		xjwt.WithKey(alg, pub),
		xjwt.WithIssuer(issuer),
		xjwt.WithAudience(aud),
		xjwt.WithRequiredClaim("exp"),
		xjwt.WithAcceptableSkew(leeway),
	}
	return impl{
		sign: func(v values) (string, error) {
			t, err := xjwt.NewBuilder().
				Issuer(issuer).Subject(v.sub).Audience([]string{audience}).
				Expiration(v.exp).IssuedAt(v.iat).NotBefore(v.iat).JwtID(v.jti).
				Claim("sid", v.sid).Claim("username", v.username).Claim("role", v.role).
				Build()
			if err != nil {
				return "", err
			}
			h := jws.NewHeaders()
			if err := h.Set(jws.TypeKey, "JWT"); err != nil {
				return "", err
			}
			b, err := xjwt.Sign(t, xjwt.WithKey(alg, priv, jws.WithProtectedHeaders(h)))
			return string(b), err
		},
		verify: func(raw string) (claims, error) {
			t, err := xjwt.Parse([]byte(raw), parseOpts...)
			if err != nil {
				return claims{}, err
			}
			var c claims
			c.Subject, _ = t.Subject()
			for name, dst := range map[string]*string{"sid": &c.SessionID, "username": &c.Username, "role": &c.Role} {
				if err := t.Get(name, dst); err != nil {
					return claims{}, fmt.Errorf("claim %s: %w", name, err)
				}
			}
			return c, nil
		},
	}, nil
}

// --- go-jose/go-jose v4 ---

type joseClaims struct {
	SessionID string `json:"sid"`
	Username  string `json:"username"`
	Role      string `json:"role"`
}

func goJose(f *fixture, aud string) (impl, error) {
	alg := jose.SignatureAlgorithm(f.alg)
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if f.kid != "" {
		opts = opts.WithHeader("kid", f.kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: f.priv}, opts)
	if err != nil {
		return impl{}, err
	}
	allowed := []jose.SignatureAlgorithm{alg}
	return impl{
		sign: func(v values) (string, error) {
			return josejwt.Signed(signer).Claims(josejwt.Claims{
				Issuer: issuer, Subject: v.sub, Audience: josejwt.Audience{audience},
				Expiry: josejwt.NewNumericDate(v.exp), IssuedAt: josejwt.NewNumericDate(v.iat),
				NotBefore: josejwt.NewNumericDate(v.iat), ID: v.jti,
			}).Claims(joseClaims{SessionID: v.sid, Username: v.username, Role: v.role}).Serialize()
		},
		verify: func(raw string) (claims, error) {
			t, err := josejwt.ParseSigned(raw, allowed)
			if err != nil {
				return claims{}, err
			}
			var std josejwt.Claims
			var priv joseClaims
			if err := t.Claims(f.pub, &std, &priv); err != nil {
				return claims{}, err
			}
			if std.Expiry == nil {
				return claims{}, errors.New("exp missing")
			}
			if err := std.ValidateWithLeeway(josejwt.Expected{Issuer: issuer, AnyAudience: josejwt.Audience{aud}, Time: time.Now()}, leeway); err != nil {
				return claims{}, err
			}
			return claims{std.Subject, priv.SessionID, priv.Username, priv.Role}, nil
		},
	}, nil
}

// --- the standard-library floor ---

// rawVerify returns the bare signature check of raw's signing input, as
// token's BenchmarkRawSignature does it.
func rawVerify(tb testing.TB, f *fixture) func() bool {
	tb.Helper()
	i := strings.LastIndexByte(f.raw, '.')
	input := []byte(f.raw[:i])
	sig, err := base64.RawURLEncoding.DecodeString(f.raw[i+1:])
	if err != nil {
		tb.Fatal(err)
	}
	switch f.alg {
	case token.ES256:
		pub := f.pub.(*ecdsa.PublicKey)
		return func() bool {
			d := sha256.Sum256(input)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(pub, d[:], r, s)
		}
	case token.EdDSA:
		pub := f.pub.(ed25519.PublicKey)
		return func() bool { return ed25519.Verify(pub, input, sig) }
	case token.RS256:
		pub := f.pub.(*rsa.PublicKey)
		return func() bool {
			d := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
		}
	}
	secret := f.pub.([]byte)
	return func() bool {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return hmac.Equal(m.Sum(nil), sig)
	}
}

// TestAgree makes sure every library does the same work on the same token:
// each accepts Latchkey's token with the same claims, Latchkey accepts each
// library's token, and each refuses a token for another audience.
func TestAgree(t *testing.T) {
	for _, alg := range algs {
		f := getFixture(t, alg)
		want := claims{"01938d2e-8a4b-7c8e-9f3a-2b1c4d5e6f70", "01938d2e-9b5c-7d9f-8e4b-3c2d5e6f7081", "anna", "member"}
		latchkey := newImpl(t, "latchkey-uncached", f, audience)
		if !rawVerify(t, f)() {
			t.Fatalf("%s: raw signature check fails", alg)
		}
		for _, lib := range libs {
			t.Run(alg+"/"+lib, func(t *testing.T) {
				im := newImpl(t, lib, f, audience)
				got, err := im.verify(f.raw)
				if err != nil || got != want {
					t.Fatalf("verify Latchkey's token: %+v, %v; want %+v", got, err, want)
				}
				own, err := im.sign(newValues())
				if err != nil {
					t.Fatal(err)
				}
				if got, err := latchkey.verify(own); err != nil || got != want {
					t.Fatalf("Latchkey verifying %s's token %s: %+v, %v", lib, own, got, err)
				}
				if got, err := im.verify(own); err != nil || got != want {
					t.Fatalf("verify own token: %+v, %v", got, err)
				}
				other := newImpl(t, lib, f, "someone-else")
				if _, err := other.verify(f.raw); err == nil {
					t.Fatal("accepted a token for another audience")
				}
			})
		}
	}
}

// BenchmarkVerify parses and verifies Latchkey's token, reading its claims.
// Compare each library with "raw" of the same algorithm, in the same run.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range algs {
		f := getFixture(b, alg)
		b.Run(alg+"/raw", func(b *testing.B) {
			verify := rawVerify(b, f)
			b.ReportAllocs()
			for b.Loop() {
				if !verify() {
					b.Fatal("bad signature")
				}
			}
		})
		for _, lib := range libs {
			b.Run(alg+"/"+lib, func(b *testing.B) {
				im := newImpl(b, lib, f, audience)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := im.verify(f.raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSign builds and signs Latchkey's claims: what Login and Refresh
// do per token (less the jti generation, the same for every library).
func BenchmarkSign(b *testing.B) {
	for _, alg := range algs {
		f := getFixture(b, alg)
		for _, lib := range libs {
			if lib == "latchkey-cached" {
				continue // signing has no cache
			}
			name := lib
			if lib == "latchkey-uncached" {
				name = "latchkey"
			}
			b.Run(alg+"/"+name, func(b *testing.B) {
				im := newImpl(b, lib, f, audience)
				v := newValues()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := im.sign(v); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
