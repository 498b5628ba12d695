package latchkey

import (
	"context"
	"errors"
	"fmt"
)

// ChangePassword is a user's own password change (POST /me/password),
// from the session sid. The current password is checked with the gate
// and throttle of a login. Every other session of the user ends at once,
// and with it, through the revocation feed, their access tokens: a
// password is changed because someone else may know it. The session it
// came from stays signed in.
func (s *Service) ChangePassword(ctx context.Context, userID, sid, current, next string, c Client) error {
	// The new password's policy is checked first: a typo there costs no
	// attempt of the throttle.
	if err := ValidatePassword(next); err != nil {
		var verr *ValidationError
		if errors.As(err, &verr) {
			return invalid("newPassword", "%s", verr.Message)
		}
		return err
	}
	u, err := s.userByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if err := s.checkPassword(ctx, u, current, sid, c, "password change"); err != nil {
		return err
	}
	if next == current {
		return invalid("newPassword", "must differ from the current password")
	}
	var hash string
	if err := s.gate.do(ctx, func() { hash = HashPassword(next, s.cfg.Argon2) }); err != nil {
		return err
	}
	// The new password and the end of the other sessions are one write:
	// a failure leaves the old password and every session as they were,
	// so the user can simply try again. Each ended session is listed in
	// the revocation feed by its id, so the current session's access
	// token, unlike after a generation bump, keeps working.
	n, err := s.cfg.Store.SetPassword(ctx, u.ID, hash, &EndSessions{Except: sid, At: s.now(), Reason: "password changed"})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("change password: %w", ErrUserNotFound) // deleted meanwhile
	} else if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	s.audit(ctx, AuditPasswordChanged, c, u.ID, sid, fmt.Sprintf("%d other sessions ended", n))
	return nil
}

// MySessions returns the user's live sessions, newest first: "where am I
// signed in".
func (s *Service) MySessions(ctx context.Context, userID string) ([]*Session, error) {
	return s.liveSessions(ctx, userID)
}

// liveSessions is Store.ListSessions without the sessions that expired.
func (s *Service) liveSessions(ctx context.Context, userID string) ([]*Session, error) {
	all, err := s.cfg.Store.ListSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	now := s.now()
	live := all[:0]
	for _, sess := range all {
		if s.live(sess, now) {
			live = append(live, sess)
		}
	}
	return live, nil
}

// EndMySession signs one of the user's own devices out, as a logout from
// it would: the session is revoked and its access tokens are refused
// through the revocation feed. A session that is not one of the user's
// live sessions, another user's included, is ErrSessionNotFound, so that
// the answer confirms no other user's session id.
func (s *Service) EndMySession(ctx context.Context, userID, sid, id string, c Client) error {
	if !validID(id) {
		return ErrSessionNotFound
	}
	sess, err := s.cfg.Store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return ErrSessionNotFound
	} else if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if sess.UserID != userID || !s.live(sess, s.now()) {
		return ErrSessionNotFound
	}
	if err := s.cfg.Store.RevokeSession(ctx, id, s.now(), "ended by the user"); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	detail := "from session " + sid
	if id == sid {
		detail = "the session it was asked from"
	}
	s.audit(ctx, AuditSessionEnded, c, userID, id, detail)
	return nil
}
