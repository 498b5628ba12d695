package token

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "regenerate testdata fixtures and the fuzz seed corpus")

// TestFixtures regenerates testdata/keys (only when missing) and the seed
// corpus under testdata/fuzz when run with -update; otherwise it checks that
// they are there.
func TestFixtures(t *testing.T) {
	if !*update {
		fixtureSigners(t)
		return
	}
	dir := filepath.Join("testdata", "keys")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, alg := range algs {
		path := filepath.Join(dir, alg+".pem")
		if _, err := os.Stat(path); err == nil {
			continue
		}
		var der []byte
		if alg == HS256 {
			der = []byte("test-only-hs256-secret-never-use-in-production-0123456789")
		} else {
			var err error
			if der, err = x509.MarshalPKCS8PrivateKey(mustGenerateKey(t, alg)); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "TEST ONLY KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, signers := fixtureVerifier(t)
	writeCorpus(t, "FuzzVerify", verifySeeds(t, signers))
	writeCorpus(t, "FuzzJWK", jwkSeeds(t, signers))
}

func writeCorpus(t *testing.T, name string, seeds []string) {
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if name == "FuzzVerify" {
			body = fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// verifySeeds are tokens that reach each stage of verification and are all
// refused: structurally valid but expired, tampered, unsigned, mis-typed.
func verifySeeds(tb testing.TB, signers map[string]*Signer) []string {
	var seeds []string
	for _, alg := range algs {
		s := signers[alg]
		c := validClaims()
		c.ExpiresAt = fixedNow.Add(-time.Hour)
		seeds = append(seeds, mustSign(tb, s, c)) // expired: reaches the claim checks
		c = validClaims()
		c.Audience = []string{"other", "also-other"}
		seeds = append(seeds, mustSign(tb, s, c)) // wrong audience, array form
		good := mustSign(tb, s, validClaims())
		parts := strings.Split(good, ".")
		seeds = append(seeds, parts[0]+"."+parts[1]+".")                                           // stripped signature
		seeds = append(seeds, parts[0]+"."+b64.EncodeToString([]byte(`{"sub":"x"}`))+"."+parts[2]) // tampered
	}
	kid := signers[ES256].KeyID()
	claims := `{"iss":"https://auth.test","sub":"u","aud":"latchkey","exp":1900000000,"role":"admin"}`
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		seeds = append(seeds, handMade(`{"alg":"`+alg+`","typ":"JWT"}`, claims, nil))
		seeds = append(seeds, handMade(`{"alg":"`+alg+`","kid":"`+kid+`"}`, claims, []byte("sig")))
	}
	seeds = append(seeds,
		handMade(`{"alg":"HS256","kid":"`+kid+`"}`, claims, []byte("0123456789abcdef0123456789abcdef")),
		handMade(`{"alg":"ES256","kid":"../../etc/passwd"}`, claims, []byte("x")),
		handMade(`{"alg":"ES256","kid":"' OR '1'='1"}`, claims, []byte("x")),
		handMade(`{"alg":"ES256","kid":7}`, claims, []byte("x")),
		handMade(`{"alg":"ES256","typ":"at+jwt","kid":"`+kid+`"}`, claims, []byte("x")),
		handMade(`{"alg":"ES256","crit":["exp"],"kid":"`+kid+`"}`, claims, []byte("x")),
		handMade(`{"alg":"ES256"}`, `{"exp":"soon","aud":[1]}`, []byte("x")),
		"", ".", "..", "a.b.c", "eyJ.eyJ.", "Bearer x", strings.Repeat("A", 64),
	)
	return seeds
}

func jwkSeeds(tb testing.TB, signers map[string]*Signer) []string {
	seeds := []string{
		rfc7638JWK,
		`{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ","kid":"k"}`,
		`{"kty":"OKP","crv":"X25519","x":"` + b64.EncodeToString(make([]byte, 32)) + `","kid":"k"}`,
		`{"kty":"oct","k":"c2VjcmV0","kid":"k"}`,
		`{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"k","alg":"RS256"}`,
		`{}`, `null`, `[]`, `{"kty":1}`,
	}
	for _, alg := range []string{ES256, EdDSA, RS256} {
		j, err := PublicJWK(signers[alg].VerificationKey())
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, mustJSON(tb, j))
	}
	return seeds
}

// FuzzVerify feeds arbitrary strings to a verifier that holds real keys. No
// input may panic or verify: producing a valid signature by mutation would
// mean forging one. The seeds in testdata/fuzz/FuzzVerify are signed with
// the testdata/keys fixtures, so mutations start past key lookup.
func FuzzVerify(f *testing.F) {
	v, signers := fixtureVerifier(f)
	for _, s := range verifySeeds(f, signers) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err == nil {
			t.Fatalf("verified a fuzzed token: %+v", c)
		}
		if c != nil {
			t.Fatal("claims returned with an error")
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not match ErrInvalid", err)
		}
	})
}

// FuzzJWK checks that whatever JSON arrives as a JWK, Key either refuses it
// or returns a key that publishes back to an equivalent JWK.
func FuzzJWK(f *testing.F) {
	for _, s := range jwkSeeds(f, fixtureSigners(f)) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var j JWK
		if json.Unmarshal(data, &j) != nil {
			return
		}
		k, err := j.Key()
		if err != nil {
			return
		}
		if _, err := k.material(); err != nil {
			t.Fatalf("accepted key is unusable: %v", err)
		}
		back, err := PublicJWK(k)
		if err != nil {
			t.Fatalf("accepted key does not publish: %v", err)
		}
		k2, err := back.Key()
		if err != nil {
			t.Fatalf("published key does not parse: %v", err)
		}
		t1, err1 := Thumbprint(k.Public)
		t2, err2 := Thumbprint(k2.Public)
		if err1 != nil || err2 != nil || t1 != t2 {
			t.Fatalf("thumbprints differ: %q %v, %q %v", t1, err1, t2, err2)
		}
	})
}
