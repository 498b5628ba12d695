package latchkey

import (
	"context"
	"fmt"
	"time"
)

// RevocationFeed is the contract's revocation feed: what was revoked
// recently enough that an access token issued before it could still be
// valid. Verifiers refuse a token whose session is listed, or whose
// user is listed with a generation above the token's "gen".
type RevocationFeed struct {
	Issuer      string
	GeneratedAt time.Time
	// Since is the start of the window: GeneratedAt minus the access TTL
	// and the verifiers' leeway. Anything older has expired anyway.
	Since    time.Time
	Sessions []RevokedSession
	Users    []UserRevocation
}

// Revocations builds the feed from the store. Its size is bounded by the
// revocations in one window (access TTL plus leeway), not by history.
func (s *Service) Revocations(ctx context.Context) (*RevocationFeed, error) {
	now := s.now()
	since := now.Add(-(s.cfg.AccessTTL + s.cfg.Leeway))
	r, err := s.cfg.Store.Revocations(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("revocation feed: %w", err)
	}
	return &RevocationFeed{Issuer: s.cfg.Issuer, GeneratedAt: now, Since: since, Sessions: r.Sessions, Users: r.Users}, nil
}

// revokeUserTokens ends the validity of every access token the user
// holds, at every verifier that follows the feed: the user's generation
// goes up, and tokens of earlier generations are refused.
//
// It runs after the change it follows is stored (a new role, a revoked
// session), so a token issued from a user row read in between carries the
// old generation and is refused too: the next refresh gets the new one.
func (s *Service) revokeUserTokens(ctx context.Context, userID string) (int64, error) {
	gen, err := s.cfg.Store.BumpGeneration(ctx, userID, s.now())
	if err != nil {
		return 0, fmt.Errorf("revoke access tokens: %w", err)
	}
	return gen, nil
}
