package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"slices"
	"strings"
	"testing"
)

// rfc7638JWK is the example key of RFC 7638 §3.1.
const rfc7638JWK = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`

func TestThumbprintRFC7638(t *testing.T) {
	var j JWK
	if err := json.Unmarshal([]byte(rfc7638JWK), &j); err != nil {
		t.Fatal(err)
	}
	k, err := j.Key()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

func TestThumbprintRejectsUnsupported(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]any{"P-384": &p384.PublicKey, "secret": []byte("x"), "nil": nil} {
		if _, err := Thumbprint(pub); err == nil {
			t.Errorf("%s: Thumbprint succeeded", name)
		}
	}
}

func TestJWKRoundTrip(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA, RS256} {
		t.Run(alg, func(t *testing.T) {
			want := newTestSigner(t, alg).VerificationKey()
			j, err := PublicJWK(want)
			if err != nil {
				t.Fatal(err)
			}
			if j.Use != "sig" || j.Alg != alg || j.Kid != want.ID {
				t.Fatalf("jwk = %+v", j)
			}
			data, err := json.Marshal(JWKS{Keys: []JWK{j}})
			if err != nil {
				t.Fatal(err)
			}
			keys, err := ParseJWKS(data)
			if err != nil || len(keys) != 1 {
				t.Fatalf("parsed %d keys, %v; want 1", len(keys), err)
			}
			got := keys[0]
			if got.ID != want.ID || got.Alg != want.Alg || !got.Public.(interface{ Equal(crypto.PublicKey) bool }).Equal(want.Public) {
				t.Fatalf("round trip: got %+v, want %+v", got, want)
			}
			// The kid the auth server uses is the thumbprint; it must match
			// what a third party computes from the published key.
			tp, err := Thumbprint(got.Public)
			if err != nil || tp != want.ID {
				t.Fatalf("thumbprint %q %v, want %q", tp, err, want.ID)
			}
		})
	}
}

func TestPublicJWKRefuses(t *testing.T) {
	tests := []struct {
		name string
		key  Key
	}{
		{"a shared secret is never published", newTestSigner(t, HS256).VerificationKey()},
		{"a key without kid cannot be found by verifiers", Key{Alg: ES256, Public: mustCachedKey(t, ES256).Public()}},
		{"alg must match the key type", Key{ID: "k", Alg: RS256, Public: mustCachedKey(t, ES256).Public()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if j, err := PublicJWK(tc.key); err == nil {
				t.Fatalf("PublicJWK = %+v, want error", j)
			}
		})
	}
}

func TestJWKKeyRejects(t *testing.T) {
	ec := mustJWK(t, ES256)
	ed := mustJWK(t, EdDSA)
	rs := mustJWK(t, RS256)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallJWK := JWK{Kty: "RSA", Kid: "small", N: b64.EncodeToString(small.N.Bytes()), E: "AQAB"}

	tests := []struct {
		name   string
		mutate func(j JWK) JWK
		from   JWK
	}{
		{"missing kid", func(j JWK) JWK { j.Kid = ""; return j }, ec},
		{"use enc", func(j JWK) JWK { j.Use = "enc"; return j }, ec},
		{"EC point not on the curve", func(j JWK) JWK { j.Y = j.X; return j }, ec},
		{"EC coordinate too short", func(j JWK) JWK { j.X = j.X[:40]; return j }, ec},
		{"EC coordinate padded", func(j JWK) JWK { j.X += "="; return j }, ec},
		{"EC on P-384", func(j JWK) JWK { j.Crv = "P-384"; return j }, ec},
		{"EC claiming RS256", func(j JWK) JWK { j.Alg = RS256; return j }, ec},
		{"EC claiming HS256", func(j JWK) JWK { j.Alg = HS256; return j }, ec},
		{"OKP X25519", func(j JWK) JWK { j.Crv = "X25519"; return j }, ed},
		{"OKP short", func(j JWK) JWK { j.X = j.X[:20]; return j }, ed},
		{"OKP claiming ES256", func(j JWK) JWK { j.Alg = ES256; return j }, ed},
		{"RSA under 2048 bits", func(j JWK) JWK { return j }, smallJWK},
		{"RSA even exponent", func(j JWK) JWK { j.E = b64.EncodeToString([]byte{1, 0, 0}); return j }, rs},
		{"RSA exponent 1", func(j JWK) JWK { j.E = "AQ"; return j }, rs},
		{"RSA huge exponent", func(j JWK) JWK { j.E = b64.EncodeToString([]byte{1, 0, 0, 0, 1}); return j }, rs},
		{"RSA modulus with leading zero", func(j JWK) JWK {
			n, _ := b64.DecodeString(j.N)
			j.N = b64.EncodeToString(append([]byte{0}, n...))
			return j
		}, rs},
		{"RSA even modulus", func(j JWK) JWK {
			n, _ := b64.DecodeString(j.N)
			n[len(n)-1] &^= 1
			j.N = b64.EncodeToString(n)
			return j
		}, rs},
		{"RSA over 8192 bits", func(j JWK) JWK {
			j.N = b64.EncodeToString(new(big.Int).Lsh(big.NewInt(1), 8200).Bytes())
			return j
		}, rs},
		{"RSA with crv", func(j JWK) JWK { j.Crv = "P-256"; return j }, rs},
		{"RSA claiming PS256", func(j JWK) JWK { j.Alg = "PS256"; return j }, rs},
		{"oct", func(j JWK) JWK { return JWK{Kty: "oct", Kid: "k", Alg: HS256} }, ec},
		{"empty kty", func(j JWK) JWK { j.Kty = ""; return j }, ec},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if k, err := tc.mutate(tc.from).Key(); err == nil {
				t.Fatalf("Key() = %+v, want error", k)
			}
		})
	}
}

func TestJWKKeyInfersAlg(t *testing.T) {
	for _, alg := range []string{ES256, EdDSA, RS256} {
		j := mustJWK(t, alg)
		j.Alg, j.Use = "", ""
		k, err := j.Key()
		if err != nil || k.Alg != alg {
			t.Errorf("%s without alg: %+v, %v", alg, k, err)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	ec, ed := mustJWK(t, ES256), mustJWK(t, EdDSA)
	enc := ec
	enc.Kid, enc.Use = "enc-key", "enc"
	tests := []struct {
		name    string
		doc     string
		wantErr bool
		want    []string // the kids returned, in order
	}{
		{name: "two keys, in document order", doc: jwksOf(t, ed, ec), want: []string{ed.Kid, ec.Kid}},
		{name: "empty set is a valid answer", doc: `{"keys":[]}`, want: []string{}},
		{name: "unusable members are skipped", doc: jwksOf(t, ec, enc) + " ", want: []string{ec.Kid}},
		{name: "unknown member types are skipped", doc: `{"keys":[` + mustJSON(t, ec) + `,{"kty":7}]}`, want: []string{ec.Kid}},
		{name: "not JSON", doc: `<html>`, wantErr: true},
		{name: "trailing data", doc: jwksOf(t, ec) + `{}`, wantErr: true},
		{name: "no keys member", doc: `{}`, wantErr: true},
		{name: "keys not an array", doc: `{"keys":{}}`, wantErr: true},
		{name: "keys null", doc: `{"keys":null}`, wantErr: true},
		{name: "duplicate kid", doc: jwksOf(t, ec, ec), wantErr: true},
		{name: "no usable key", doc: jwksOf(t, enc), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseJWKS([]byte(tc.doc))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parsed %d keys, want error", len(keys))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, k := range keys {
				got = append(got, k.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got kids %q, want %q", got, tc.want)
			}
		})
	}
}

func mustJWK(tb testing.TB, alg string) JWK {
	tb.Helper()
	j, err := PublicJWK(newTestSigner(tb, alg).VerificationKey())
	if err != nil {
		tb.Fatal(err)
	}
	return j
}

func jwksOf(tb testing.TB, keys ...JWK) string {
	tb.Helper()
	return mustJSON(tb, JWKS{Keys: keys})
}

func TestJWKJSONOmitsEmpty(t *testing.T) {
	s := mustJSON(t, mustJWK(t, EdDSA))
	for _, absent := range []string{`"y"`, `"n"`, `"e"`} {
		if strings.Contains(s, absent) {
			t.Errorf("%s in %s", absent, s)
		}
	}
}
