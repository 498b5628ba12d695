package latchkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

// Session is one login. Its refresh tokens form a chain in which only the
// newest is live; the server keeps only their SHA-256 hashes.
type Session struct {
	ID         string
	UserID     string
	CreatedAt  time.Time
	LastUsedAt time.Time
	// ExpiresAt is when the session dies unless used again: LastUsedAt plus
	// the idle lifetime, never past CreatedAt plus the absolute lifetime.
	ExpiresAt time.Time

	// RevokedAt is zero while the session is live.
	RevokedAt    time.Time
	RevokeReason string

	UserAgent string
	IP        string

	// CurrentHash is the hash of the one live refresh token.
	CurrentHash []byte
	// PreviousHash is the hash of the token CurrentHash replaced, retired at
	// PreviousRetiredAt. Presenting it within the grace window returns the
	// current token again, which PreviousSuccessor holds sealed under a key
	// derived from the previous token itself: the server can open it only
	// when the client presents that token, so a copy of the database does
	// not yield a live refresh token.
	PreviousHash      []byte
	PreviousRetiredAt time.Time
	PreviousSuccessor []byte
}

// Revoked reports whether the session was revoked.
func (s *Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// refreshTokenBytes is the entropy of a refresh token: 256 bits.
const refreshTokenBytes = 32

// newRefreshToken returns a new opaque refresh token, base64url without
// padding, and its hash.
func newRefreshToken() (string, []byte) {
	b := make([]byte, refreshTokenBytes)
	rand.Read(b) // never returns an error; crashes the process if the CSPRNG fails
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashToken(tok)
}

// hashToken is how refresh tokens are stored and looked up. A plain SHA-256
// suffices: the input has 256 bits of entropy, so there is nothing to
// brute-force and no need for a slow hash or salt.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func (s *Service) startSession(ctx context.Context, u *User, c Client) (*TokenPair, string, error) {
	now := s.now()
	refresh, hash := newRefreshToken()
	sess := &Session{
		ID:          newID(),
		UserID:      u.ID,
		CreatedAt:   now,
		LastUsedAt:  now,
		ExpiresAt:   s.expiry(now, now),
		UserAgent:   truncate(c.UserAgent, maxUserAgent),
		IP:          c.IP,
		CurrentHash: hash,
	}
	if err := s.cfg.Store.CreateSession(ctx, sess); err != nil {
		return nil, "", fmt.Errorf("create session: %w", err)
	}
	p, err := s.pair(u, sess.ID, refresh, now)
	return p, sess.ID, err
}

// expiry is a session's deadline: idle lifetime from its last use, capped
// by the absolute lifetime from its creation.
func (s *Service) expiry(created, lastUsed time.Time) time.Time {
	idle := lastUsed.Add(s.cfg.RefreshIdleTTL)
	abs := created.Add(s.cfg.SessionMaxAge)
	if abs.Before(idle) {
		return abs
	}
	return idle
}

// live reports whether sess may still be used at now. The deadline is
// recomputed rather than read from ExpiresAt alone so that shortening a
// lifetime in the configuration takes effect for existing sessions.
func (s *Service) live(sess *Session, now time.Time) bool {
	if sess.Revoked() {
		return false
	}
	deadline := s.expiry(sess.CreatedAt, sess.LastUsedAt)
	if sess.ExpiresAt.Before(deadline) {
		deadline = sess.ExpiresAt
	}
	return now.Before(deadline)
}

func (s *Service) pair(u *User, sid, refresh string, now time.Time) (*TokenPair, error) {
	access, err := s.cfg.Signer.Sign(&token.Claims{
		Issuer:     s.cfg.Issuer,
		Subject:    u.ID,
		Audience:   []string{s.cfg.Audience},
		ExpiresAt:  now.Add(s.cfg.AccessTTL),
		IssuedAt:   now,
		NotBefore:  now,
		ID:         rand.Text(),
		SessionID:  sid,
		Username:   u.Username,
		Role:       string(u.Role),
		Generation: u.Generation,
	})
	if err != nil {
		return nil, fmt.Errorf("sign access token: %w", err)
	}
	return &TokenPair{AccessToken: access, RefreshToken: refresh, ExpiresIn: s.cfg.AccessTTL}, nil
}

// Logout revokes the session the refresh token belongs to. Any token the
// session ever had will do, since ending a session never grants anything.
// An unknown token is not an error: logout is idempotent.
func (s *Service) Logout(ctx context.Context, refresh string, c Client) error {
	if !wellFormedRefreshToken(refresh) {
		return nil
	}
	sess, err := s.cfg.Store.SessionByTokenHash(ctx, hashToken(refresh))
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if sess.Revoked() {
		return nil // ended already: nothing happens, nothing to record
	}
	if err := s.cfg.Store.RevokeSession(ctx, sess.ID, s.now(), "logout"); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("logout: %w", err)
	}
	s.audit(ctx, AuditLogout, c, sess.UserID, sess.ID, "")
	return nil
}

// LogoutAll revokes every session of the user; sessionID is the one the
// request came from, for the audit log.
func (s *Service) LogoutAll(ctx context.Context, userID, sessionID string, c Client) error {
	n, err := s.cfg.Store.RevokeUserSessions(ctx, userID, "", s.now(), "logout all")
	if err != nil {
		return fmt.Errorf("logout all: %w", err)
	}
	if _, err := s.revokeUserTokens(ctx, userID); err != nil {
		return fmt.Errorf("logout all: %w", err)
	}
	s.audit(ctx, AuditLogoutAll, c, userID, sessionID, fmt.Sprintf("%d sessions ended", n))
	return nil
}

// CheckSession returns ErrSessionRevoked unless the session is live. The
// auth server calls it for its own Bearer endpoints, so that a revoked
// session's access tokens stop working there at once; resource servers do
// not call it and accept them until they expire.
func (s *Service) CheckSession(ctx context.Context, sid string) error {
	sess, err := s.cfg.Store.Session(ctx, sid)
	if errors.Is(err, ErrNotFound) {
		return ErrSessionRevoked
	}
	if err != nil {
		return fmt.Errorf("check session: %w", err)
	}
	if !s.live(sess, s.now()) {
		return ErrSessionRevoked
	}
	return nil
}

// SessionRetention is how long a session is kept after it expired. A
// refresh token of an expired chain presented within this day is still
// recognised as one of ours (invalid_grant, the chain identified) rather
// than looked up as unknown.
const SessionRetention = 24 * time.Hour

// SweepSessions deletes the sessions that expired more than
// SessionRetention ago, with their tokens, and returns how many it
// deleted. The server runs it in the background; it is safe to run from
// several replicas at once.
func (s *Service) SweepSessions(ctx context.Context) (int, error) {
	n, err := s.cfg.Store.DeleteExpiredSessions(ctx, s.now().Add(-SessionRetention))
	if err != nil {
		return n, fmt.Errorf("sweep sessions: %w", err)
	}
	// Unused second-step challenges go with them; they expire in minutes.
	if _, err := s.cfg.Store.DeleteExpiredMFAChallenges(ctx, s.now()); err != nil {
		return n, fmt.Errorf("sweep mfa challenges: %w", err)
	}
	return n, nil
}

// truncate cuts s to at most n bytes of valid UTF-8, in a string of its
// own: a prefix would keep the whole of s (up to a 64 KiB header) alive
// for as long as the result is held.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.Clone(strings.ToValidUTF8(s[:n], ""))
}
