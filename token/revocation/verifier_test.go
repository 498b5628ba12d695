package revocation

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

const testAudience = "latchkey"

func newTestSigner(tb testing.TB) *token.Signer {
	tb.Helper()
	priv, err := token.GenerateKey(token.ES256)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := token.NewSigner(token.ES256, "k1", priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustSign(tb testing.TB, s *token.Signer, sub, sid string, gen int64) string {
	tb.Helper()
	raw, err := s.Sign(&token.Claims{
		Issuer: testIssuer, Subject: sub, Audience: []string{testAudience}, SessionID: sid, Generation: gen,
		IssuedAt: fixedNow, ExpiresAt: fixedNow.Add(15 * time.Minute),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func newTestVerifier(s *token.Signer, opts ...token.Option) *token.Verifier {
	base := []token.Option{token.WithIssuer(testIssuer), token.WithAudience(testAudience), token.WithNow(func() time.Time { return fixedNow })}
	return token.NewVerifier(token.StaticKeys(s.VerificationKey()), append(base, opts...)...)
}

// TestCacheHitDoesNotBypass is the case the option exists for: a token
// verified and cached, then revoked at the auth server, is refused from
// the cache once the Follower has the new list, by session and by
// generation alike; the token the refresh brings works at once.
func TestCacheHitDoesNotBypass(t *testing.T) {
	signer := newTestSigner(t)
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, nil, nil))
	f := newTestFollower(t, fs, newClock(), nil)
	mustFetch(t, f)
	v := newTestVerifier(signer, token.WithRevocations(f))
	ctx := context.Background()

	loggedOut := mustSign(t, signer, "u-anna", "s-anna", 0)
	demoted := mustSign(t, signer, "u-john", "s-john", 1)
	for _, raw := range []string{loggedOut, demoted, loggedOut, demoted} { // the second round hits the cache
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("before the revocations: %v", err)
		}
	}

	fs.serve(newDoc(fixedNow.Add(time.Second), []string{"s-anna"}, map[string]int64{"u-john": 2}))
	mustFetch(t, f)
	for name, raw := range map[string]string{"the logged-out session's token": loggedOut, "the demoted user's earlier token": demoted} {
		if _, err := v.Verify(ctx, raw); !errors.Is(err, token.ErrRevoked) || !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s, from the cache: %v; want ErrRevoked", name, err)
		}
	}
	if _, err := v.Verify(ctx, mustSign(t, signer, "u-john", "s-john", 2)); err != nil {
		t.Errorf("the token the next refresh issues, at the new generation: %v", err)
	}
}

// TestFailClosedReachesCachedTokens: the fail-closed state is a new
// version, so cached tokens are refused too, and they pass again, without
// a signature check, after the feed answers.
func TestFailClosedReachesCachedTokens(t *testing.T) {
	signer := newTestSigner(t)
	fs := newFeedServer(t)
	fs.serve(newDoc(fixedNow, nil, nil))
	clk := newClock()
	f := newTestFollower(t, fs, clk, func(c *Config) { c.MaxStale, c.FailClosed = time.Minute, true })
	mustFetch(t, f)
	v := newTestVerifier(signer, token.WithRevocations(f))
	raw := mustSign(t, signer, "u", "s", 0)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	f.closeIfStale()
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, token.ErrRevocationsUnavailable) {
		t.Errorf("a cached token while failing closed: %v", err)
	}
	mustFetch(t, f) // a 304
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("a cached token after the feed answered: %v", err)
	}
}

// BenchmarkCachedVerify times a cached verification with and without a
// Follower holding 10,000 sessions and 1,000 users, alternately in one
// loop so that a shared machine's drift lands on both, and reports
// with/without as "ratio". The contract's budget is 1.05. "unversioned"
// asks the same list on every hit, without the version check, to show
// what the version saves.
func BenchmarkCachedVerify(b *testing.B) {
	signer := newTestSigner(b)
	fs := newFeedServer(b)
	sids, users := manyEntries(10000)
	fs.serve(newDoc(fixedNow, sids, users))
	f := newTestFollower(b, fs, newClock(), nil)
	mustFetch(b, f)
	// A live user with a live session: the common case, which the list
	// does not name.
	raw := mustSign(b, signer, "u-live", "s-live", 1)
	ctx := context.Background()
	for _, mode := range []struct {
		name    string
		revoker token.Revoker
	}{
		{"follower", f},
		{"unversioned", unversioned{f}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			without := newTestVerifier(signer)
			with := newTestVerifier(signer, token.WithRevocations(mode.revoker))
			for _, v := range []*token.Verifier{without, with} {
				if _, err := v.Verify(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
			const batch = 64
			var tWithout, tWith time.Duration
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				for range batch {
					without.Verify(ctx, raw)
				}
				mid := time.Now()
				for range batch {
					with.Verify(ctx, raw)
				}
				tWithout += mid.Sub(start)
				tWith += time.Since(mid)
			}
			b.ReportMetric(float64(tWithout.Nanoseconds())/float64(b.N*batch), "ns/without")
			b.ReportMetric(float64(tWith.Nanoseconds())/float64(b.N*batch), "ns/with")
			b.ReportMetric(float64(tWith)/float64(tWithout), "ratio")
		})
	}
}

// BenchmarkRevoked is the list lookup itself, which an uncached
// verification and an unversioned Revoker pay on every call.
func BenchmarkRevoked(b *testing.B) {
	fs := newFeedServer(b)
	sids, users := manyEntries(10000)
	fs.serve(newDoc(fixedNow, sids, users))
	f := newTestFollower(b, fs, newClock(), nil)
	mustFetch(b, f)
	c := claims("u-live", "s-live", 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := f.Revoked(c); err != nil {
			b.Fatal(err)
		}
	}
}

// unversioned hides Version, so the Verifier asks on every hit.
type unversioned struct{ f *Follower }

func (u unversioned) Revoked(c *token.Claims) error { return u.f.Revoked(c) }
