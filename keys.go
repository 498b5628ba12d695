package latchkey

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// KeyState is where a signing key is in its life (the contract's Signing
// keys section). Keys move only forward: next, active, retired, and then
// they are deleted; withdrawn is retirement for cause.
type KeyState string

const (
	// KeyNext is published in JWKS but signs nothing yet, so that every
	// verifier that refreshes its JWKS on schedule holds the key before
	// the first token signed with it arrives.
	KeyNext KeyState = "next"
	// KeyActive signs. There is one per algorithm in use.
	KeyActive KeyState = "active"
	// KeyRetired signs nothing and stays published until every token it
	// signed has expired (access TTL plus leeway after RetiredAt).
	KeyRetired KeyState = "retired"
	// KeyWithdrawn is retired for cause: it leaves JWKS at once, so every
	// token it signed is refused from each verifier's next JWKS fetch.
	KeyWithdrawn KeyState = "withdrawn"
)

// SigningKey is a private key the auth server signs access tokens with.
type SigningKey struct {
	ID    string // the kid: RFC 7638 thumbprint of the public key
	Alg   string // ES256, EdDSA or RS256
	State KeyState
	// Private is the PKCS #8 DER encoding of the private key, or, when
	// Sealed, that encoding sealed with AES-256-GCM under the key-encryption
	// key (LATCHKEY_KEY_ENCRYPTION_KEY). It never leaves the auth server.
	Private     []byte
	Sealed      bool
	CreatedAt   time.Time
	ActivatedAt time.Time // zero while next
	RetiredAt   time.Time // zero until retired or withdrawn
}

// Errors of the key ring.
var (
	// ErrKeysSealed is returned when stored keys are sealed and no
	// key-encryption key was given.
	ErrKeysSealed = errors.New("sealed keys or secrets are stored and no key-encryption key is set")
	// ErrWrongEncryptionKey is returned when a sealed key does not open
	// with the key-encryption key given.
	ErrWrongEncryptionKey = errors.New("sealed keys or secrets do not open with this key-encryption key")
	// ErrKeyNotFound is returned by Retire for a kid that names no
	// published key. It matches ErrNotFound.
	ErrKeyNotFound = fmt.Errorf("%w: no such signing key", ErrNotFound)
)

// KeyRingConfig configures a KeyRing over a Store.
type KeyRingConfig struct {
	Store Store
	// Alg is the algorithm that signs (default ES256).
	Alg string
	// AccessTTL and Leeway say how long a token can outlive its key's
	// retirement, hence how long a retired key stays published (defaults:
	// DefaultAccessTTL and token.DefaultLeeway).
	AccessTTL time.Duration
	Leeway    time.Duration
	// Rotation is the automatic rotation interval; 0 rotates only when
	// asked (latchkey keys rotate).
	Rotation time.Duration
	// EncryptionKey, 32 bytes, seals private keys at rest. Keys stored
	// unsealed are sealed on the first start with it.
	EncryptionKey []byte
	Logger        *slog.Logger
	// Audit, when set, records key_rotated and key_retired.
	Audit *AuditLog
	Now   func() time.Time
}

// KeyRing is the auth server's signing keys as the contract's lifecycle
// moves them. It signs with the active key and publishes the next, the
// active and the retired keys still needed; Reload picks up what another
// replica (or the CLI) changed in the database. It is safe for concurrent
// use; signing reads one atomic pointer.
type KeyRing struct {
	cfg    KeyRingConfig
	sealer *sealer // nil without an EncryptionKey
	set    atomic.Pointer[keySet]
}

// keySet is one loaded generation of keys: what signs and what is
// published, with the JWKS document encoded once.
type keySet struct {
	signer    *token.Signer
	published []token.Key
	byID      map[string]token.Key
	jwks      []byte
	// states counts the stored keys by state, for metrics.
	states map[KeyState]int
	// version changes when a published key leaves the set, so the auth
	// server's own verified-token cache drops tokens of a withdrawn key
	// (token.VersionedKeySource).
	version uint64
}

// NewKeyRing loads the stored keys, first bringing them to the contract's
// shape in one UpdateSigningKeys: an active and a next key for Alg
// (generated on an empty database; of replicas starting together exactly
// one generates them), keys of another algorithm retired, retired keys past
// their window deleted, unsealed keys sealed when an EncryptionKey is set.
func NewKeyRing(ctx context.Context, cfg KeyRingConfig) (*KeyRing, error) {
	if cfg.Store == nil {
		return nil, errors.New("latchkey: KeyRingConfig.Store is required")
	}
	if cfg.Alg == "" {
		cfg.Alg = token.ES256
	}
	if cfg.Alg == token.HS256 {
		return nil, errors.New("latchkey: HS256 keys are shared secrets; use SharedSecretKeyRing")
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = token.DefaultLeeway
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &KeyRing{cfg: cfg}
	var err error
	if r.sealer, err = newSealer(cfg.EncryptionKey); err != nil {
		return nil, err
	}
	if err := r.update(ctx, func([]*SigningKey, time.Time) (KeyChanges, error) { return KeyChanges{}, nil }); err != nil {
		return nil, err
	}
	return r, nil
}

// SharedSecretKeyRing is the key ring of shared-secret (HS256) mode: it
// signs with secret, publishes nothing, and also accepts tokens signed
// with previous (ACCESS_TOKEN_SECRET_PREVIOUS) while a secret changes.
// previous never signs.
func SharedSecretKeyRing(secret, previous []byte) (*KeyRing, error) {
	s, err := token.NewHMACSigner(secret)
	if err != nil {
		return nil, err
	}
	set := &keySet{signer: s, byID: map[string]token.Key{}, jwks: []byte(`{"keys":[]}`)}
	set.published = []token.Key{s.VerificationKey()}
	if previous != nil {
		p, err := token.NewHMACSigner(previous)
		if err != nil {
			return nil, fmt.Errorf("previous secret: %w", err)
		}
		set.published = append(set.published, p.VerificationKey())
	}
	r := &KeyRing{}
	r.set.Store(set)
	return r, nil
}

// Sign signs c with the active key.
func (r *KeyRing) Sign(c *token.Claims) (string, error) { return r.set.Load().signer.Sign(c) }

// Alg is the algorithm of the active key.
func (r *KeyRing) Alg() string { return r.set.Load().signer.Alg() }

// ActiveID is the kid of the active key ("" in shared-secret mode).
func (r *KeyRing) ActiveID() string { return r.set.Load().signer.KeyID() }

// Verification returns every key a token of this server may be verified
// with: the published ones, or the shared secrets.
func (r *KeyRing) Verification() []token.Key { return r.set.Load().published }

// JWKS is the published keys as a JWKS document (RFC 7517), encoded once
// per change; {"keys":[]} in shared-secret mode.
func (r *KeyRing) JWKS() []byte { return r.set.Load().jwks }

// Key implements token.KeySource over the published keys, so the auth
// server's own verifier follows the ring. In shared-secret mode kid is ""
// and the current secret answers; a verifier that must also accept the
// previous secret uses Verification.
func (r *KeyRing) Key(_ context.Context, kid string) (token.Key, error) {
	set := r.set.Load()
	if k, ok := set.byID[kid]; ok {
		return k, nil
	}
	if kid == "" && set.signer.Alg() == token.HS256 {
		return set.published[0], nil
	}
	return token.Key{}, fmt.Errorf("%w: kid %q", token.ErrUnknownKey, kid)
}

// Version implements token.VersionedKeySource: it changes when a key
// leaves the published set, never when one is only added.
func (r *KeyRing) Version() uint64 { return r.set.Load().version }

// States counts the keys by state as last loaded (none in shared-secret
// mode), for metrics.
func (r *KeyRing) States() map[KeyState]int { return maps.Clone(r.set.Load().states) }

// Keys implements token.KeySetSource: in shared-secret mode, the current
// secret and the previous one (ACCESS_TOKEN_SECRET_PREVIOUS), which
// verifies while a secret changes and never signs; otherwise Key's one.
func (r *KeyRing) Keys(ctx context.Context, kid string) ([]token.Key, error) {
	set := r.set.Load()
	if kid == "" && set.signer.Alg() == token.HS256 {
		return set.published, nil
	}
	k, err := r.Key(ctx, kid)
	if err != nil {
		return nil, err
	}
	return []token.Key{k}, nil
}

// List returns the stored keys, newest first, without their private parts.
func (r *KeyRing) List(ctx context.Context) ([]*SigningKey, error) {
	if r.cfg.Store == nil {
		return nil, nil
	}
	keys, err := r.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	for _, k := range keys {
		k.Private = nil
	}
	return keys, nil
}

// Reload reads the stored keys and switches to them. Replicas call it on
// a short interval (Run), so a rotation made anywhere is in force
// everywhere within that interval.
func (r *KeyRing) Reload(ctx context.Context) error {
	if r.cfg.Store == nil {
		return nil
	}
	keys, err := r.cfg.Store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	return r.load(keys, r.cfg.Now())
}

// Rotate makes the next key active, retires the active one and creates a
// new next key, as one step across replicas.
func (r *KeyRing) Rotate(ctx context.Context) error {
	if err := r.update(ctx, func(keys []*SigningKey, now time.Time) (KeyChanges, error) {
		return r.rotate(keys, now)
	}); err != nil {
		return err
	}
	r.audit(ctx, AuditKeyRotated, "by request; now signing with "+r.ActiveID())
	return nil
}

func (r *KeyRing) audit(ctx context.Context, t AuditType, detail string) {
	if r.cfg.Audit != nil {
		r.cfg.Audit.Record(ctx, AuditEvent{Type: t, Detail: detail})
	}
}

// Retire withdraws a key for cause: it leaves JWKS at once. Withdrawing
// the active key makes the next one active and creates a new next;
// withdrawing the next key replaces it. It returns ErrKeyNotFound for a
// kid that is not published.
func (r *KeyRing) Retire(ctx context.Context, kid string) error {
	err := r.update(ctx, func(keys []*SigningKey, now time.Time) (KeyChanges, error) {
		i := slices.IndexFunc(keys, func(k *SigningKey) bool { return k.ID == kid && k.State != KeyWithdrawn })
		if i < 0 {
			return KeyChanges{}, ErrKeyNotFound
		}
		k := *keys[i]
		k.State, k.RetiredAt = KeyWithdrawn, now
		// The shape rules that follow promote the next key and create a
		// new one where this left a gap.
		return KeyChanges{Update: []*SigningKey{&k}}, nil
	})
	if err != nil {
		return err
	}
	r.audit(ctx, AuditKeyRetired, "key "+kid+" withdrawn; now signing with "+r.ActiveID())
	return nil
}

// Run keeps the ring current until ctx ends: every interval it rotates
// when automatic rotation is due, deletes retired keys whose tokens have
// all expired, and reloads what other replicas changed. Failures are
// logged and retried at the next tick; the keys in force stay in force.
func (r *KeyRing) Run(ctx context.Context, interval time.Duration) {
	if r.cfg.Store == nil {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rotated := false
		err := r.update(ctx, func(keys []*SigningKey, now time.Time) (KeyChanges, error) {
			// Decided inside the update, so that of replicas whose ticks
			// coincide only the first rotates.
			if rotated = r.rotationDue(keys, now); rotated {
				return r.rotate(keys, now)
			}
			return KeyChanges{}, nil
		})
		switch {
		case err != nil && ctx.Err() == nil:
			r.cfg.Logger.WarnContext(ctx, "signing keys not refreshed", "err", err)
		case err == nil && rotated:
			r.audit(ctx, AuditKeyRotated, "on schedule, every "+r.cfg.Rotation.String()+"; now signing with "+r.ActiveID())
		}
	}
}

func (r *KeyRing) rotationDue(keys []*SigningKey, now time.Time) bool {
	if r.cfg.Rotation <= 0 {
		return false
	}
	for _, k := range keys {
		if k.Alg == r.cfg.Alg && k.State == KeyActive {
			return !now.Before(k.ActivatedAt.Add(r.cfg.Rotation))
		}
	}
	return false
}

// rotate is the step Rotate takes: active to retired, next to active.
// The shape rules then create the new next key.
func (r *KeyRing) rotate(keys []*SigningKey, now time.Time) (KeyChanges, error) {
	var ch KeyChanges
	for _, k := range keys {
		if k.Alg != r.cfg.Alg {
			continue
		}
		switch k.State {
		case KeyActive:
			u := *k
			u.State, u.RetiredAt = KeyRetired, now
			ch.Update = append(ch.Update, &u)
		case KeyNext:
			u := *k
			u.State, u.ActivatedAt = KeyActive, now
			ch.Update = append(ch.Update, &u)
		}
	}
	return ch, nil
}

// update runs one UpdateSigningKeys: decide's changes, then the shape
// rules on the result, then loads what is stored afterwards.
func (r *KeyRing) update(ctx context.Context, decide func([]*SigningKey, time.Time) (KeyChanges, error)) error {
	var after []*SigningKey
	now := stamp(r.cfg.Now())
	err := r.cfg.Store.UpdateSigningKeys(ctx, func(keys []*SigningKey) (KeyChanges, error) {
		ch, err := decide(keys, now)
		if err != nil {
			return KeyChanges{}, err
		}
		merged := applyChanges(keys, ch)
		shape, err := r.shape(merged, now)
		if err != nil {
			return KeyChanges{}, err
		}
		ch = mergeChanges(ch, shape)
		after = applyChanges(keys, ch)
		return ch, nil
	})
	if err != nil {
		return fmt.Errorf("update signing keys: %w", err)
	}
	return r.load(after, now)
}

// shape returns the changes that bring keys to the contract's shape (see
// NewKeyRing). It is applied after every change, so no path can leave the
// ring without an active or a next key.
func (r *KeyRing) shape(keys []*SigningKey, now time.Time) (KeyChanges, error) {
	var ch KeyChanges
	window := r.cfg.AccessTTL + r.cfg.Leeway
	var active, next []*SigningKey
	for _, k := range keys {
		// A wrong key-encryption key must stop the start before anything is
		// sealed with it.
		if k.Sealed {
			if r.sealer == nil {
				return KeyChanges{}, ErrKeysSealed
			}
			if _, err := r.open(k.ID, k.Private); err != nil {
				return KeyChanges{}, err
			}
		}
		switch {
		case (k.State == KeyRetired || k.State == KeyWithdrawn) && now.After(k.RetiredAt.Add(window)):
			ch.Delete = append(ch.Delete, k.ID)
			continue
		case k.Alg != r.cfg.Alg && k.State == KeyActive:
			u := *k
			u.State, u.RetiredAt = KeyRetired, now
			ch.Update = append(ch.Update, &u)
			continue
		case k.Alg != r.cfg.Alg && k.State == KeyNext:
			ch.Delete = append(ch.Delete, k.ID) // it never signed
			continue
		case k.Alg == r.cfg.Alg && k.State == KeyActive:
			active = append(active, k)
		case k.Alg == r.cfg.Alg && k.State == KeyNext:
			next = append(next, k)
		}
	}
	// keys come newest first: the newest of each state is kept.
	for _, k := range tail(active) {
		u := *k
		u.State, u.RetiredAt = KeyRetired, now
		ch.Update = append(ch.Update, &u)
	}
	for _, k := range tail(next) {
		ch.Delete = append(ch.Delete, k.ID)
	}
	if len(active) == 0 {
		if len(next) > 0 {
			u := *next[0]
			u.State, u.ActivatedAt = KeyActive, now
			ch.Update = append(ch.Update, &u)
			next = nil
		} else {
			k, err := r.newKey(KeyActive, now)
			if err != nil {
				return KeyChanges{}, err
			}
			ch.Create = append(ch.Create, k)
		}
	}
	if len(next) == 0 {
		// A second key a microsecond newer, so that newest-first order
		// puts next before active.
		k, err := r.newKey(KeyNext, now.Add(time.Microsecond))
		if err != nil {
			return KeyChanges{}, err
		}
		ch.Create = append(ch.Create, k)
	}
	if r.sealer != nil {
		// Last, so that every key that stays, whatever else changed it,
		// is sealed.
		var seal KeyChanges
		for _, k := range applyChanges(keys, ch) {
			if !k.Sealed {
				u := *k
				u.Private, u.Sealed = r.seal(k.ID, k.Private), true
				seal.Update = append(seal.Update, &u)
			}
		}
		ch = mergeChanges(ch, seal)
	}
	return ch, nil
}

func tail(keys []*SigningKey) []*SigningKey {
	if len(keys) < 2 {
		return nil
	}
	return keys[1:]
}

func (r *KeyRing) newKey(state KeyState, now time.Time) (*SigningKey, error) {
	priv, err := token.GenerateKey(r.cfg.Alg)
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", r.cfg.Alg, err)
	}
	kid, err := token.Thumbprint(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("thumbprint: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode %s key: %w", r.cfg.Alg, err)
	}
	k := &SigningKey{ID: kid, Alg: r.cfg.Alg, State: state, Private: der, CreatedAt: now}
	if state == KeyActive {
		k.ActivatedAt = now
	}
	if r.sealer != nil {
		k.Private, k.Sealed = r.seal(kid, der), true
	}
	return k, nil
}

// load builds the key set from stored keys and switches to it.
func (r *KeyRing) load(keys []*SigningKey, now time.Time) error {
	set := &keySet{byID: map[string]token.Key{}, states: map[KeyState]int{}}
	for _, k := range keys {
		set.states[k.State]++
	}
	doc := token.JWKS{Keys: []token.JWK{}}
	window := r.cfg.AccessTTL + r.cfg.Leeway
	for _, k := range keys {
		published := k.State == KeyNext || k.State == KeyActive ||
			k.State == KeyRetired && !now.After(k.RetiredAt.Add(window))
		if !published {
			continue
		}
		priv, err := r.private(k)
		if err != nil {
			return err
		}
		if k.State == KeyActive && k.Alg == r.cfg.Alg {
			if set.signer, err = token.NewSigner(k.Alg, k.ID, priv); err != nil {
				return fmt.Errorf("signing key %s: %w", k.ID, err)
			}
		}
		pub := token.Key{ID: k.ID, Alg: k.Alg, Public: priv.Public()}
		j, err := token.PublicJWK(pub)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", k.ID, err)
		}
		set.published = append(set.published, pub)
		set.byID[k.ID] = pub
		doc.Keys = append(doc.Keys, j)
	}
	if set.signer == nil {
		return fmt.Errorf("no active %s signing key is stored", r.cfg.Alg)
	}
	var err error
	if set.jwks, err = json.Marshal(doc); err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}
	if old := r.set.Load(); old != nil {
		set.version = old.version
		for id, k := range old.byID {
			if n, ok := set.byID[id]; !ok || !n.Equal(k) {
				set.version++
				break
			}
		}
	}
	r.set.Store(set)
	return nil
}

func (r *KeyRing) private(k *SigningKey) (crypto.Signer, error) {
	der := k.Private
	if k.Sealed {
		if r.sealer == nil {
			return nil, ErrKeysSealed
		}
		var err error
		if der, err = r.open(k.ID, k.Private); err != nil {
			return nil, err
		}
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", k.ID, err)
	}
	s, ok := p.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("signing key %s: %T is not a crypto.Signer", k.ID, p)
	}
	return s, nil
}

// sealLabel binds a sealed key to its kid, so that a sealed blob copied
// onto another row does not open.
const sealLabel = "latchkey signing key v1\x00"

func (r *KeyRing) seal(kid string, der []byte) []byte {
	return r.sealer.seal(sealLabel+kid, der)
}

func (r *KeyRing) open(kid string, sealed []byte) ([]byte, error) {
	return r.sealer.open(sealLabel+kid, sealed)
}

// ParseEncryptionKey reads LATCHKEY_KEY_ENCRYPTION_KEY: 32 bytes as hex
// or base64 (standard or URL alphabet, padded or not).
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("want 32 bytes as 64 hex digits or base64")
}

// applyChanges returns keys with ch applied, newest first, leaving keys
// itself untouched.
func applyChanges(keys []*SigningKey, ch KeyChanges) []*SigningKey {
	out := slices.Clone(ch.Create)
	for _, k := range keys {
		if slices.Contains(ch.Delete, k.ID) {
			continue
		}
		if i := slices.IndexFunc(ch.Update, func(u *SigningKey) bool { return u.ID == k.ID }); i >= 0 {
			k = ch.Update[i]
		}
		out = append(out, k)
	}
	slices.SortStableFunc(out, func(a, b *SigningKey) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out
}

// mergeChanges adds later to first. later was computed on the keys with
// first applied, so where both touch a key, later's version already holds
// first's change and replaces it.
func mergeChanges(first, later KeyChanges) KeyChanges {
	out := KeyChanges{Create: slices.Clone(first.Create), Update: slices.Clone(first.Update), Delete: slices.Clone(first.Delete)}
	byID := func(id string) func(*SigningKey) bool { return func(k *SigningKey) bool { return k.ID == id } }
	for _, u := range later.Update {
		if i := slices.IndexFunc(out.Create, byID(u.ID)); i >= 0 {
			out.Create[i] = u
		} else if i := slices.IndexFunc(out.Update, byID(u.ID)); i >= 0 {
			out.Update[i] = u
		} else {
			out.Update = append(out.Update, u)
		}
	}
	for _, id := range later.Delete {
		if i := slices.IndexFunc(out.Create, byID(id)); i >= 0 {
			out.Create = slices.Delete(out.Create, i, i+1)
			continue
		}
		out.Update = slices.DeleteFunc(out.Update, byID(id))
		out.Delete = append(out.Delete, id)
	}
	out.Create = append(out.Create, later.Create...)
	return out
}
