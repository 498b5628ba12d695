package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// A verifier sees the same few header segments over and over: one per
// signing key, byte for byte. Decoding one into golang-jwt's header map is
// a fixed cost on every token, a fifth of an RS256 verification. So the
// header segment of a token whose signature verified is remembered with
// what was read from it, and a token whose header segment is one of those
// skips the header decoding: the rest (claims, key lookup and pin,
// signature) runs as in golang-jwt's parser, in the same order, with
// golang-jwt's own signing method doing the check.
//
// Only headers of verified tokens are remembered, so forged tokens cannot
// fill the map, and it is bounded as well. The key is looked up for every
// token, so a key removed from the KeySource stops verifying at once.

// maxKnownHeaders bounds the map: a header per signing key, and a key set
// holds a few at a time (next, active, retired).
const maxKnownHeaders = 64

// errUnknownHeader sends a token to the full parse.
var errUnknownHeader = errors.New("header not seen before")

// strictB64 decodes segments as golang-jwt's parser does with
// jwt.WithStrictDecoding.
var strictB64 = b64.Strict()

type knownHeader struct {
	method jwt.SigningMethod
	kid    string
}

type knownHeaders struct {
	mu sync.RWMutex
	m  map[string]knownHeader
}

func (h *knownHeaders) get(segment string) (knownHeader, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	k, ok := h.m[segment]
	return k, ok
}

func (h *knownHeaders) put(segment string, k knownHeader) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[segment]; ok {
		return
	}
	if len(h.m) >= maxKnownHeaders {
		// Keys rotate, so a full map is mostly headers of keys long gone;
		// keeping them would send every new key's tokens down the slow
		// path for good. The live headers come back one full parse each.
		clear(h.m)
	}
	h.m[segment] = k
}

// parseKnownHeader is parse for a token whose header segment is known. It
// returns errUnknownHeader for any other token, and for one that is not
// three segments, so that golang-jwt's parser judges and describes it.
func (v *Verifier) parseKnownHeader(ctx context.Context, raw string) (*wireClaims, error) {
	segment, rest, _ := strings.Cut(raw, ".")
	header, ok := v.headers.get(segment)
	if !ok {
		return nil, errUnknownHeader
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return nil, errUnknownHeader
	}
	claimBytes, err := strictB64.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	var wire wireClaims
	if err := json.Unmarshal(claimBytes, &wire); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	sigBytes, err := strictB64.DecodeString(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	material, err := v.keyMaterial(ctx, header.method, header.kid)
	if err != nil {
		return nil, err
	}
	if !verifyWithAny(header.method, raw[:len(segment)+1+len(payload)], sigBytes, material) {
		return nil, ErrSignature
	}
	return &wire, nil
}

// verifyWithAny checks sig with material, or with any key of a
// jwt.VerificationKeySet (a KeySetSource's keys for one kid), as
// golang-jwt's parser does on the slow path.
func verifyWithAny(method jwt.SigningMethod, signed string, sig []byte, material any) bool {
	set, ok := material.(jwt.VerificationKeySet)
	if !ok {
		return method.Verify(signed, sig, material) == nil
	}
	for _, k := range set.Keys {
		if method.Verify(signed, sig, k) == nil {
			return true
		}
	}
	return false
}
