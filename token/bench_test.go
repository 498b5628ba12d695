package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
	"time"
)

func BenchmarkSign(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			s := newTestSigner(b, alg)
			c := validClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Sign(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify and BenchmarkRawSignature run on the same tokens, so the
// parsing overhead reads as uncached / raw in one run.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range algs {
		s := newTestSigner(b, alg)
		raw := mustSign(b, s, validClaims())
		ctx := context.Background()
		// cached-versioned hits the cache over a VersionedKeySource, which
		// adds the version check a remote JWKS needs to the hit path.
		for _, mode := range []string{"uncached", "cached", "cached-versioned"} {
			b.Run(alg+"/"+mode, func(b *testing.B) {
				var opts []Option
				if mode == "uncached" {
					opts = append(opts, WithCacheSize(0))
				}
				keys := StaticKeys(s.VerificationKey())
				if mode == "cached-versioned" {
					keys = newChangingKeys(s.VerificationKey())
				}
				v := newTestVerifier(keys, opts...)
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(ctx, raw); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkVerifyParallel shows the cache under concurrent hits.
func BenchmarkVerifyParallel(b *testing.B) {
	s := newTestSigner(b, ES256)
	v := newTestVerifier(StaticKeys(s.VerificationKey()))
	var tokens []string
	for i := range 64 {
		c := validClaims()
		c.ID = strings.Repeat("x", i)
		tokens = append(tokens, mustSign(b, s, c))
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := v.Verify(context.Background(), tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkRawSignature is the bare standard-library check of each token's
// signing input: the floor uncached verification is measured against.
func BenchmarkRawSignature(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			_, _, verify := signedToken(b, alg)
			if !verify() {
				b.Fatal("signature does not verify")
			}
			b.ReportAllocs()
			for b.Loop() {
				verify()
			}
		})
	}
}

// BenchmarkVerifyOverRaw times an uncached Verify and the raw signature
// check of the same token alternately, in one loop, and reports the ratio
// of their totals as verify/raw. Measured minutes apart, as separate
// benchmarks, the two drift with whatever else a shared machine is doing;
// interleaved, the drift lands on both.
func BenchmarkVerifyOverRaw(b *testing.B) {
	for _, alg := range algs {
		b.Run(alg, func(b *testing.B) {
			s, raw, check := signedToken(b, alg)
			v := newTestVerifier(StaticKeys(s.VerificationKey()), WithCacheSize(0))
			ctx := context.Background()
			if _, err := v.Verify(ctx, raw); err != nil || !check() {
				b.Fatalf("token does not verify: %v", err)
			}
			var rawTime, verifyTime time.Duration
			for b.Loop() {
				t0 := time.Now()
				check()
				t1 := time.Now()
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
				verifyTime += time.Since(t1)
				rawTime += t1.Sub(t0)
			}
			b.ReportMetric(float64(rawTime.Nanoseconds())/float64(b.N), "raw-ns/op")
			b.ReportMetric(float64(verifyTime.Nanoseconds())/float64(b.N), "verify-ns/op")
			b.ReportMetric(float64(verifyTime)/float64(rawTime), "verify/raw")
		})
	}
}

// signedToken returns a signer for alg, a token it signed, and rawCheck of
// that token.
func signedToken(b *testing.B, alg string) (*Signer, string, func() bool) {
	s := newTestSigner(b, alg)
	raw := mustSign(b, s, validClaims())
	return s, raw, rawCheck(b, s, raw)
}

// rawCheck returns the standard library's check of raw's signature with
// s's key, and nothing else.
func rawCheck(b *testing.B, s *Signer, raw string) func() bool {
	key := s.VerificationKey()
	i := strings.LastIndexByte(raw, '.')
	input := []byte(raw[:i])
	sig, err := b64.DecodeString(raw[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	switch key.Alg {
	case ES256:
		pub := key.Public.(*ecdsa.PublicKey)
		return func() bool {
			d := sha256.Sum256(input)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(pub, d[:], r, s)
		}
	case EdDSA:
		pub := key.Public.(ed25519.PublicKey)
		return func() bool { return ed25519.Verify(pub, input, sig) }
	case RS256:
		pub := key.Public.(*rsa.PublicKey)
		return func() bool {
			d := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil
		}
	case HS256:
		return func() bool {
			m := hmac.New(sha256.New, key.Secret)
			m.Write(input)
			return hmac.Equal(m.Sum(nil), sig)
		}
	}
	b.Fatalf("no raw check for %s", key.Alg)
	return nil
}
