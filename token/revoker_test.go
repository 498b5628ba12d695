package token

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// listRevoker is a hand-made Revoker: a set of revoked sessions, changed by
// the test, counting how often it is asked. versioned selects whether it
// also implements VersionedRevoker.
type listRevoker struct {
	mu      sync.Mutex
	revoked map[string]bool
	err     error // answered for every token when set
	version atomic.Uint64
	asked   atomic.Int64
}

func newListRevoker() *listRevoker { return &listRevoker{revoked: map[string]bool{}} }

func (r *listRevoker) Revoked(c *Claims) error {
	r.asked.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if r.revoked[c.SessionID] {
		return ErrRevoked
	}
	return nil
}

// revoke lists sid, then names the new state with a new version, in the
// order VersionedRevoker asks for.
func (r *listRevoker) revoke(sid string) {
	r.mu.Lock()
	r.revoked[sid] = true
	r.mu.Unlock()
	r.version.Add(1)
}

type versionedListRevoker struct{ *listRevoker }

func (r versionedListRevoker) Version() uint64 { return r.version.Load() }

// unversioned hides Version, so the Verifier must ask on every hit.
type unversioned struct{ r *listRevoker }

func (u unversioned) Revoked(c *Claims) error { return u.r.Revoked(c) }

var _ VersionedRevoker = versionedListRevoker{}

// TestRevocationsOnEveryPath: a token revoked after it was verified and
// cached is refused on its next use, from the cache, whether the Revoker
// has versions or not and whether there is a cache at all.
func TestRevocationsOnEveryPath(t *testing.T) {
	s := newTestSigner(t, ES256)
	raw := mustSign(t, s, validClaims())
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		versioned bool
		cacheSize int
	}{
		{"versioned revoker, cached", true, DefaultCacheSize},
		{"unversioned revoker, cached", false, DefaultCacheSize},
		{"versioned revoker, no cache", true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := newListRevoker()
			var r Revoker = unversioned{lr}
			if tc.versioned {
				r = versionedListRevoker{lr}
			}
			v := newTestVerifier(StaticKeys(s.VerificationKey()), WithRevocations(r), WithCacheSize(tc.cacheSize))
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatalf("before the revocation: %v", err)
			}
			if tc.cacheSize > 0 && v.cache.len() != 1 {
				t.Fatalf("the token was not cached")
			}
			lr.revoke("sid-1")
			for i := range 2 {
				_, err := v.Verify(ctx, raw)
				if !errors.Is(err, ErrRevoked) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("use %d after the revocation: %v, want ErrRevoked matching ErrInvalid", i+1, err)
				}
			}
		})
	}
}

// TestRevocationCheckedOncePerVersion: over a VersionedRevoker, cache hits
// ask only when the version has changed since the token last passed; over
// one without versions, every hit asks.
func TestRevocationCheckedOncePerVersion(t *testing.T) {
	s := newTestSigner(t, ES256)
	raw := mustSign(t, s, validClaims())
	ctx := context.Background()
	verifyN := func(t *testing.T, v *Verifier, n int) {
		t.Helper()
		for range n {
			if _, err := v.Verify(ctx, raw); err != nil {
				t.Fatal(err)
			}
		}
	}

	lr := newListRevoker()
	v := newTestVerifier(StaticKeys(s.VerificationKey()), WithRevocations(versionedListRevoker{lr}))
	verifyN(t, v, 5)
	if n := lr.asked.Load(); n != 1 {
		t.Errorf("versioned: asked %d times for 1 miss and 4 hits under one version, want 1", n)
	}
	lr.revoke("another session")
	verifyN(t, v, 5)
	if n := lr.asked.Load(); n != 2 {
		t.Errorf("versioned: asked %d times after one version change, want 2", n)
	}

	lr = newListRevoker()
	v = newTestVerifier(StaticKeys(s.VerificationKey()), WithRevocations(unversioned{lr}))
	verifyN(t, v, 5)
	if n := lr.asked.Load(); n != 5 {
		t.Errorf("unversioned: asked %d times for 5 verifications, want 5", n)
	}
}

// TestRevocationAnswers: what each kind of answer becomes, and that a
// refused or unjudged token does not enter the cache.
func TestRevocationAnswers(t *testing.T) {
	s := newTestSigner(t, ES256)
	raw := mustSign(t, s, validClaims())
	for _, tc := range []struct {
		name        string
		answer      error
		wantInvalid bool // 401 rather than 5xx
		want        error
	}{
		{"revoked", ErrRevoked, true, ErrRevoked},
		{"another ErrInvalid", ErrMalformed, true, ErrMalformed},
		{"unavailable", ErrRevocationsUnavailable, false, ErrRevocationsUnavailable},
		{"any other error is unavailable, never a refusal", errors.New("disk on fire"), false, ErrRevocationsUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lr := newListRevoker()
			lr.err = tc.answer
			v := newTestVerifier(StaticKeys(s.VerificationKey()), WithRevocations(versionedListRevoker{lr}))
			_, err := v.Verify(context.Background(), raw)
			if !errors.Is(err, tc.want) || errors.Is(err, ErrInvalid) != tc.wantInvalid {
				t.Errorf("Verify = %v; want %v, matching ErrInvalid: %v", err, tc.want, tc.wantInvalid)
			}
			if v.cache.len() != 0 {
				t.Errorf("a token the Revoker did not pass was cached")
			}
		})
	}
}

// TestRevocationAfterOtherChecks: the Revoker is asked only about tokens
// that passed everything else, so an expired token reads as expired and a
// forged one is never shown to it.
func TestRevocationAfterOtherChecks(t *testing.T) {
	s := newTestSigner(t, ES256)
	lr := newListRevoker()
	lr.revoke("sid-1")
	clk := newClock(fixedNow)
	v := newTestVerifier(StaticKeys(s.VerificationKey()), WithRevocations(versionedListRevoker{lr}), WithNow(clk.Now))

	good := mustSign(t, s, validClaims())
	forged := good[:strings.LastIndexByte(good, '.')+1] + strings.Repeat("A", 86)
	if _, err := v.Verify(context.Background(), forged); !errors.Is(err, ErrSignature) {
		t.Errorf("a forged token: %v, want ErrSignature", err)
	}
	clk.Advance(time.Hour)
	if _, err := v.Verify(context.Background(), mustSign(t, s, validClaims())); !errors.Is(err, ErrExpired) {
		t.Errorf("an expired, revoked token: %v, want ErrExpired", err)
	}
	if n := lr.asked.Load(); n != 0 {
		t.Errorf("the Revoker was asked %d times about tokens that failed other checks", n)
	}
}

// TestRevocationRace hits one cached token from many goroutines while the
// list changes under them; once the revocation is published, no
// verification that starts afterwards passes. Run with -race.
func TestRevocationRace(t *testing.T) {
	s := newTestSigner(t, ES256)
	raw := mustSign(t, s, validClaims())
	lr := newListRevoker()
	v := newTestVerifier(StaticKeys(s.VerificationKey()), WithRevocations(versionedListRevoker{lr}))
	ctx := context.Background()
	var revoked atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				after := revoked.Load()
				_, err := v.Verify(ctx, raw)
				if after && err == nil {
					t.Error("a verification that started after the revocation passed")
					return
				}
			}
		})
	}
	for i := range 50 {
		lr.revoke("unrelated-" + string(rune('a'+i%26)))
	}
	lr.revoke("sid-1")
	revoked.Store(true)
	wg.Wait()
}
