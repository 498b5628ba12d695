package latchkey

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// Refresh trades a refresh token for a new pair, retiring the presented
// token. It returns ErrInvalidGrant for a token that is unknown, expired,
// revoked or reused.
//
// The rules, from the contract: presenting the token that was current a
// moment ago (within ReuseGrace of its retirement) returns the same
// successor again, so retries and racing tabs neither sign the user out nor
// fork the chain. Presenting any older token, or the previous one after the
// grace window, is reuse: the whole session is revoked, including its
// newest token, because one of the two holders of that token is not its
// owner.
func (s *Service) Refresh(ctx context.Context, refresh string, c Client) (*TokenPair, error) {
	if !wellFormedRefreshToken(refresh) {
		return nil, ErrInvalidGrant
	}
	hash := hashToken(refresh)
	// One read for both: a second query was a twentieth of a refresh.
	sess, u, err := s.cfg.Store.SessionAndUserByTokenHash(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidGrant
	}
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	now := s.now()
	if !s.live(sess, now) {
		return nil, ErrInvalidGrant
	}
	if u.Disabled {
		return nil, ErrInvalidGrant
	}

	if equalHash(sess.CurrentHash, hash) {
		next, nextHash := newRefreshToken()
		err := s.cfg.Store.RotateRefreshToken(ctx, Rotation{
			SessionID:       sess.ID,
			OldHash:         hash,
			NewHash:         nextHash,
			SealedSuccessor: sealSuccessor(refresh, next),
			At:              now,
			ExpiresAt:       s.expiry(sess.CreatedAt, now),
		})
		if err == nil {
			return s.pair(u, sess.ID, next, now)
		}
		if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("refresh: %w", err)
		}
		// Another request rotated this token between our read and our
		// write. Judge this one by the same rules as a late arrival: within
		// the grace window it gets the winner's successor; without one it
		// is a second use of a retired token, which is what theft looks
		// like, whatever the timing.
		if sess, err = s.cfg.Store.Session(ctx, sess.ID); err != nil {
			return nil, fmt.Errorf("refresh: reload session: %w", err)
		}
	}

	if pair := s.graceRetry(ctx, u, sess, refresh, hash, now); pair != nil {
		return pair, nil
	}

	if err := s.cfg.Store.RevokeSession(ctx, sess.ID, now, "refresh token reuse"); err != nil {
		return nil, fmt.Errorf("refresh: revoke session after reuse: %w", err)
	}
	s.cfg.Logger.WarnContext(ctx, "security: refresh token reuse, session revoked",
		"session_id", sess.ID, "user_id", sess.UserID, "ip", c.IP)
	s.audit(ctx, AuditRefreshReuseDetected, c, sess.UserID, sess.ID, "a retired refresh token was presented again; the session is revoked")
	return nil, ErrInvalidGrant
}

// graceRetry returns the session's current token again, with a fresh
// access token, if hash is the immediately previous token and it was retired
// within the grace window. Otherwise it returns nil.
func (s *Service) graceRetry(ctx context.Context, u *User, sess *Session, refresh string, hash []byte, now time.Time) *TokenPair {
	if s.cfg.ReuseGrace <= 0 || sess.Revoked() || !equalHash(sess.PreviousHash, hash) {
		return nil
	}
	if now.Sub(sess.PreviousRetiredAt) > s.cfg.ReuseGrace {
		return nil
	}
	next, err := openSuccessor(refresh, sess.PreviousSuccessor)
	if err != nil || !equalHash(hashToken(next), sess.CurrentHash) {
		// Cannot happen unless the row was tampered with; refuse rather
		// than hand out a token the chain does not know.
		s.cfg.Logger.ErrorContext(ctx, "grace retry: sealed successor does not match session", "session_id", sess.ID)
		return nil
	}
	pair, err := s.pair(u, sess.ID, next, now)
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "grace retry", "session_id", sess.ID, "err", err)
		return nil
	}
	return pair
}

// wellFormedRefreshToken rejects, before any database work, strings that
// cannot be a token we issued: 32 bytes in unpadded base64url.
func wellFormedRefreshToken(t string) bool {
	if len(t) != 43 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// equalHash compares two stored hashes. They are hashes of high-entropy
// tokens looked up by value already, so timing reveals nothing; a constant
// time comparison is used anyway to keep the habit uniform.
func equalHash(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && subtle.ConstantTimeCompare(a, b) == 1
}

// successorKey derives the key that seals a token's successor from the
// token itself, with a label so that it differs from the stored hash.
func successorKey(predecessor string) []byte {
	h := sha256.Sum256([]byte("latchkey refresh successor v1\x00" + predecessor))
	return h[:]
}

// sealSuccessor encrypts successor with AES-256-GCM under a key derived
// from predecessor.
func sealSuccessor(predecessor, successor string) []byte {
	aead := newAEAD(successorKey(predecessor))
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(successor), nil)
}

// openSuccessor reverses sealSuccessor; it fails for any other predecessor.
func openSuccessor(predecessor string, sealed []byte) (string, error) {
	aead := newAEAD(successorKey(predecessor))
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("sealed successor too short")
	}
	nonce, ct := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, nil)
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // key is always 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}
