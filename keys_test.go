package latchkey_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
	"github.com/latchkey-dev/latchkey/sqlite"
	"github.com/latchkey-dev/latchkey/token"
)

// keyEnv is a store and a clock for key ring tests.
type keyEnv struct {
	store latchkey.Store
	clock *latchkeytest.Clock
}

func newKeyEnv(t *testing.T) *keyEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir()+"/auth.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &keyEnv{store: st, clock: latchkeytest.NewClock(latchkeytest.Start)}
}

func (e *keyEnv) ring(t *testing.T, mod func(*latchkey.KeyRingConfig)) *latchkey.KeyRing {
	t.Helper()
	r, err := e.open(t.Context(), mod)
	if err != nil {
		t.Fatalf("NewKeyRing: %v", err)
	}
	return r
}

func (e *keyEnv) open(ctx context.Context, mod func(*latchkey.KeyRingConfig)) (*latchkey.KeyRing, error) {
	cfg := latchkey.KeyRingConfig{Store: e.store, AccessTTL: 15 * time.Minute, Now: e.clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	return latchkey.NewKeyRing(ctx, cfg)
}

// states returns kid → state of the stored keys.
func (e *keyEnv) states(t *testing.T) map[string]latchkey.KeyState {
	t.Helper()
	keys, err := e.store.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]latchkey.KeyState{}
	for _, k := range keys {
		m[k.ID] = k.State
	}
	return m
}

func published(r *latchkey.KeyRing) map[string]bool {
	m := map[string]bool{}
	for _, k := range r.Verification() {
		m[k.ID] = true
	}
	return m
}

func signWith(t *testing.T, r *latchkey.KeyRing, now time.Time) string {
	t.Helper()
	tok, err := r.Sign(&token.Claims{Issuer: "https://auth.test", Subject: "u1", Audience: []string{"latchkey"},
		IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(15 * time.Minute), ID: "j", SessionID: "s", Username: "anna", Role: "member"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func verifies(t *testing.T, r *latchkey.KeyRing, now time.Time, tok string) error {
	t.Helper()
	v := token.NewVerifier(r, token.WithIssuer("https://auth.test"), token.WithAudience("latchkey"),
		token.WithNow(func() time.Time { return now }))
	_, err := v.Verify(t.Context(), tok)
	return err
}

func TestKeyRingFirstStart(t *testing.T) {
	e := newKeyEnv(t)
	r := e.ring(t, nil)
	st := e.states(t)
	if len(st) != 2 || st[r.ActiveID()] != latchkey.KeyActive {
		t.Fatalf("stored keys = %v; want an active and a next key", st)
	}
	if p := published(r); len(p) != 2 || !p[r.ActiveID()] {
		t.Errorf("published = %v; want both keys", p)
	}
	if r.Alg() != token.ES256 {
		t.Errorf("Alg = %s, want ES256 by default", r.Alg())
	}
	now := e.clock.Now()
	if err := verifies(t, r, now, signWith(t, r, now)); err != nil {
		t.Errorf("own token: %v", err)
	}
	// A second start changes nothing.
	r2 := e.ring(t, nil)
	if r2.ActiveID() != r.ActiveID() || !bytes.Equal(r2.JWKS(), r.JWKS()) || len(e.states(t)) != 2 {
		t.Errorf("restart changed the keys: %v", e.states(t))
	}
}

// TestKeyRingReplicasStartTogether: three replicas starting at the same
// moment on an empty database end with one key set and identical JWKS.
func TestKeyRingReplicasStartTogether(t *testing.T) {
	e := newKeyEnv(t)
	rings := make([]*latchkey.KeyRing, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Go(func() { rings[i], errs[i] = e.open(t.Context(), nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	for i, r := range rings[1:] {
		if r.ActiveID() != rings[0].ActiveID() || !bytes.Equal(r.JWKS(), rings[0].JWKS()) {
			t.Errorf("replica %d: active %s, JWKS %s; replica 0: %s, %s", i+1, r.ActiveID(), r.JWKS(), rings[0].ActiveID(), rings[0].JWKS())
		}
	}
	if n := len(e.states(t)); n != 2 {
		t.Errorf("%d keys stored, want 2", n)
	}
}

func TestKeyRingRotate(t *testing.T) {
	e := newKeyEnv(t)
	a := e.ring(t, nil)
	b := e.ring(t, nil) // another replica
	oldActive := a.ActiveID()
	var next string
	for id, s := range e.states(t) {
		if s == latchkey.KeyNext {
			next = id
		}
	}
	before := signWith(t, a, e.clock.Now())

	e.clock.Advance(time.Minute)
	v := a.Version()
	if err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if a.Version() != v {
		t.Error("a rotation, which removes no published key, changed the version and would empty the verified-token cache")
	}
	st := e.states(t)
	if a.ActiveID() != next || st[next] != latchkey.KeyActive || st[oldActive] != latchkey.KeyRetired || len(st) != 3 {
		t.Fatalf("after rotate: active %s, stored %v; want %s active, %s retired and a new next", a.ActiveID(), st, next, oldActive)
	}
	if p := published(a); len(p) != 3 {
		t.Errorf("published after rotate = %v, want next, active and retired", p)
	}
	if err := verifies(t, a, e.clock.Now(), before); err != nil {
		t.Errorf("a token signed before the rotation: %v", err)
	}

	// The other replica signs with the old key until it reloads, and that
	// key is still published; after Reload both agree.
	if b.ActiveID() != oldActive {
		t.Fatalf("replica b switched without a reload")
	}
	if err := verifies(t, a, e.clock.Now(), signWith(t, b, e.clock.Now())); err != nil {
		t.Errorf("replica b's token before its reload: %v", err)
	}
	if err := b.Reload(t.Context()); err != nil || b.ActiveID() != next || !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Errorf("after reload: %v, active %s; want %s and a's JWKS", err, b.ActiveID(), next)
	}

	// The retired key stays published for the access TTL plus leeway.
	e.clock.Advance(15*time.Minute + token.DefaultLeeway)
	if err := a.Reload(t.Context()); err != nil || !published(a)[oldActive] {
		t.Errorf("retired key unpublished before its tokens expired (%v)", err)
	}
	e.clock.Advance(time.Second)
	if err := a.Reload(t.Context()); err != nil || published(a)[oldActive] {
		t.Errorf("retired key still published after its tokens expired (%v)", err)
	}
	if err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.states(t)[oldActive]; ok {
		t.Errorf("a retired key past its window was not deleted at the next change")
	}
}

func TestKeyRingRetireForCause(t *testing.T) {
	e := newKeyEnv(t)
	r := e.ring(t, nil)
	compromised := r.ActiveID()
	tok := signWith(t, r, e.clock.Now())
	v := r.Version()
	if err := r.Retire(t.Context(), compromised); err != nil {
		t.Fatal(err)
	}
	if r.Version() == v {
		t.Error("withdrawing a key left the ring's version unchanged, so cached tokens of it would still pass")
	}
	if r.ActiveID() == compromised || published(r)[compromised] {
		t.Fatalf("withdrawn key still signs or is published")
	}
	if err := verifies(t, r, e.clock.Now(), tok); !errors.Is(err, token.ErrUnknownKey) {
		t.Errorf("token of a withdrawn key: %v, want ErrUnknownKey", err)
	}
	st := e.states(t)
	if st[compromised] != latchkey.KeyWithdrawn || st[r.ActiveID()] != latchkey.KeyActive || len(st) != 3 {
		t.Errorf("after retire: %v; want the withdrawn key, the promoted active and a new next", st)
	}
	if err := r.Retire(t.Context(), compromised); !errors.Is(err, latchkey.ErrKeyNotFound) {
		t.Errorf("retiring it again: %v, want ErrKeyNotFound", err)
	}
	if err := r.Retire(t.Context(), "no-such-kid"); !errors.Is(err, latchkey.ErrKeyNotFound) || !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("retire unknown: %v, want ErrKeyNotFound", err)
	}
	// Withdrawing the next key replaces it.
	var next string
	for id, s := range e.states(t) {
		if s == latchkey.KeyNext {
			next = id
		}
	}
	if err := r.Retire(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	if published(r)[next] || len(published(r)) != 2 {
		t.Errorf("after withdrawing the next key, published = %v; want the active and a new next", published(r))
	}
}

func TestKeyRingAutomaticRotation(t *testing.T) {
	e := newKeyEnv(t)
	r := e.ring(t, func(c *latchkey.KeyRingConfig) { c.Rotation = time.Hour })
	first := r.ActiveID()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() { r.Run(ctx, 5*time.Millisecond); close(done) }()

	time.Sleep(30 * time.Millisecond) // several ticks, none due
	if r.ActiveID() != first {
		t.Fatalf("rotated before the interval")
	}
	e.clock.Advance(time.Hour)
	deadline := time.Now().Add(5 * time.Second)
	for r.ActiveID() == first && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	second := r.ActiveID()
	if second == first {
		t.Fatal("not rotated an interval after activation")
	}
	time.Sleep(30 * time.Millisecond)
	if r.ActiveID() != second {
		t.Errorf("rotated again within the interval")
	}
	cancel()
	<-done
}

func TestKeyRingSealing(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, 32)
	e := newKeyEnv(t)
	e.ring(t, func(c *latchkey.KeyRingConfig) { c.Alg = token.EdDSA }) // a retired EdDSA key must be sealed too
	plain := e.ring(t, nil)                                            // keys stored unsealed first
	r := e.ring(t, func(c *latchkey.KeyRingConfig) { c.EncryptionKey = kek })
	if r.ActiveID() != plain.ActiveID() {
		t.Fatalf("sealing changed the active key")
	}
	keys, err := e.store.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !k.Sealed {
			t.Errorf("key %s not sealed", k.ID)
		}
		if _, err := x509.ParsePKCS8PrivateKey(k.Private); err == nil {
			t.Errorf("key %s: a copy of the database holds a usable private key", k.ID)
		}
	}
	now := e.clock.Now()
	if err := verifies(t, r, now, signWith(t, r, now)); err != nil {
		t.Errorf("sealed ring's token: %v", err)
	}
	// New keys are sealed as they are made.
	if err := r.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, _ = e.store.SigningKeys(t.Context())
	for _, k := range keys {
		if !k.Sealed {
			t.Errorf("key %s made after sealing is not sealed", k.ID)
		}
	}

	for _, tc := range []struct {
		name string
		kek  []byte
		want error
	}{
		{"no key-encryption key", nil, latchkey.ErrKeysSealed},
		{"wrong key-encryption key", bytes.Repeat([]byte{8}, 32), latchkey.ErrWrongEncryptionKey},
	} {
		if _, err := e.open(t.Context(), func(c *latchkey.KeyRingConfig) { c.EncryptionKey = tc.kek }); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := e.open(t.Context(), func(c *latchkey.KeyRingConfig) { c.EncryptionKey = kek[:16] }); err == nil {
		t.Error("a 16-byte key-encryption key was accepted")
	}
	// The refused starts changed nothing.
	if keys2, _ := e.store.SigningKeys(t.Context()); len(keys2) != len(keys) {
		t.Errorf("a refused start changed the stored keys")
	}
}

func TestKeyRingAlgorithmChange(t *testing.T) {
	e := newKeyEnv(t)
	es := e.ring(t, nil)
	tok := signWith(t, es, e.clock.Now())
	ed := e.ring(t, func(c *latchkey.KeyRingConfig) { c.Alg = token.EdDSA })
	if ed.Alg() != token.EdDSA {
		t.Fatalf("Alg = %s", ed.Alg())
	}
	st := e.states(t)
	if st[es.ActiveID()] != latchkey.KeyRetired || len(st) != 3 {
		t.Errorf("stored = %v; want the ES256 key retired, its next deleted, and EdDSA active and next", st)
	}
	if err := verifies(t, ed, e.clock.Now(), tok); err != nil {
		t.Errorf("an ES256 token after the switch: %v", err)
	}
}

func TestParseEncryptionKey(t *testing.T) {
	for _, in := range []string{
		"0707070707070707070707070707070707070707070707070707070707070707",
		"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
		"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc",
	} {
		if b, err := latchkey.ParseEncryptionKey(in); err != nil || !bytes.Equal(b, bytes.Repeat([]byte{7}, 32)) {
			t.Errorf("ParseEncryptionKey(%q) = %x, %v", in, b, err)
		}
	}
	for _, in := range []string{"", "0707", "not a key at all, not a key at all, not a key"} {
		if _, err := latchkey.ParseEncryptionKey(in); err == nil {
			t.Errorf("ParseEncryptionKey(%q) accepted it", in)
		}
	}
}

func TestSharedSecretKeyRingPrevious(t *testing.T) {
	cur, prev := []byte("current-secret-0123456789abcdefghij"), []byte("previous-secret-0123456789abcdefgh")
	old, err := latchkey.SharedSecretKeyRing(prev, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := latchkey.SharedSecretKeyRing(cur, prev)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.JWKS()) != `{"keys":[]}` || len(r.Verification()) != 2 {
		t.Errorf("JWKS %s, %d verification keys; want none published and two accepted", r.JWKS(), len(r.Verification()))
	}
	now := time.Now()
	tok := signWith(t, r, now)
	if err := verifies(t, old, now, tok); err == nil {
		t.Error("the previous secret signs: a token of the ring verified under the previous secret alone")
	}
	// A token signed before the change, with the previous secret, still
	// verifies; one signed with a third secret does not.
	if err := verifies(t, r, now, signWith(t, old, now)); err != nil {
		t.Errorf("a token of the previous secret: %v", err)
	}
	other, err := latchkey.SharedSecretKeyRing([]byte("a-third-secret-0123456789abcdefghij"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifies(t, r, now, signWith(t, other, now)); !errors.Is(err, token.ErrSignature) {
		t.Errorf("a token of another secret: %v, want ErrSignature", err)
	}
}
