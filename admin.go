package latchkey

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Actor is who asks for an admin operation: the user id and session of
// their access token, and their client, for the audit log.
type Actor struct {
	UserID    string
	SessionID string
	Client    Client
	// operator is set by Operator alone; see there.
	operator bool
}

// Operator is the Actor of the command line (latchkey user, latchkey
// sessions): whoever can open the database itself, which is more than any
// admin account can do, and what an operator needs when no admin can sign
// in. The admin operations skip the role check for it, apply every other
// rule, and audit the change "by the command line". The field it sets is
// unexported, so no access token, however forged, can become one.
func Operator() Actor { return Actor{operator: true} }

// by names the actor at the end of an audit detail.
func (a Actor) by() string {
	if a.operator {
		return "by the command line"
	}
	return "by admin " + a.UserID
}

// Paging bounds for ListUsers and ListAudit.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// requireAdmin checks the acting user in the database rather than trusting
// the role in their access token, so that a demoted or disabled admin loses
// admin power at once, not when their token expires. The Operator passes.
func (s *Service) requireAdmin(ctx context.Context, a Actor) error {
	if a.operator {
		return nil
	}
	u, err := s.cfg.Store.UserByID(ctx, a.UserID)
	if errors.Is(err, ErrNotFound) {
		return ErrNotAdmin
	}
	if err != nil {
		return fmt.Errorf("check admin: %w", err)
	}
	if u.Role != RoleAdmin || u.Disabled {
		return ErrNotAdmin
	}
	return nil
}

// ListUsers returns up to limit users after cursor, oldest first, and the
// cursor of the next page ("" on the last page). limit 0 means
// DefaultPageSize.
func (s *Service) ListUsers(ctx context.Context, a Actor, cursor string, limit int) ([]*User, string, error) {
	if err := s.requireAdmin(ctx, a); err != nil {
		return nil, "", err
	}
	if limit == 0 {
		limit = DefaultPageSize
	}
	if limit < 1 || limit > MaxPageSize {
		return nil, "", invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	if cursor != "" && !validID(cursor) {
		return nil, "", invalid("cursor", "is not a cursor this server returned")
	}
	// One extra row tells whether another page exists without a count.
	users, err := s.cfg.Store.ListUsers(ctx, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list users: %w", err)
	}
	next := ""
	if len(users) > limit {
		users = users[:limit]
		next = users[limit-1].ID
	}
	return users, next, nil
}

// AdminCreateUser creates an account with any role.
func (s *Service) AdminCreateUser(ctx context.Context, a Actor, username, password string, role Role) (*User, error) {
	if err := s.requireAdmin(ctx, a); err != nil {
		return nil, err
	}
	u, err := s.CreateUser(ctx, username, password, role)
	if err != nil {
		return nil, err
	}
	s.audit(ctx, AuditUserCreated, a.Client, u.ID, a.SessionID,
		fmt.Sprintf("username %q, role %s, %s", u.Username, u.Role, a.by()))
	return u, nil
}

// UserUpdate lists the fields an admin may change; nil leaves a field as
// it is.
type UserUpdate struct {
	Role     *Role
	Disabled *bool
}

// UpdateUser changes a user's role or disabled flag. Disabling revokes
// every session of the user. An admin cannot demote or disable themselves,
// so the last admin cannot lock everyone out by mistake.
func (s *Service) UpdateUser(ctx context.Context, a Actor, id string, upd UserUpdate) (*User, error) {
	if err := s.requireAdmin(ctx, a); err != nil {
		return nil, err
	}
	if upd.Role == nil && upd.Disabled == nil {
		return nil, invalid("body", "give role, disabled or both")
	}
	if upd.Role != nil && !upd.Role.Valid() {
		return nil, invalid("role", "must be %q or %q", RoleAdmin, RoleMember)
	}
	u, err := s.userByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	if id == a.UserID && (upd.Role != nil && *upd.Role != RoleAdmin || upd.Disabled != nil && *upd.Disabled) {
		return nil, ErrSelfLockout
	}
	var changes []string
	revoke := false // tokens issued under the old role or while enabled must stop working
	if upd.Role != nil && *upd.Role != u.Role {
		revoke = true
		changes = append(changes, fmt.Sprintf("role %s to %s", u.Role, *upd.Role))
		u.Role = *upd.Role
	}
	if upd.Disabled != nil && *upd.Disabled != u.Disabled {
		revoke = revoke || *upd.Disabled
		changes = append(changes, fmt.Sprintf("disabled %v to %v", u.Disabled, *upd.Disabled))
		u.Disabled = *upd.Disabled
	}
	if err := s.cfg.Store.UpdateUser(ctx, u); errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("update user: %w", ErrUserNotFound) // deleted meanwhile
	} else if err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	if u.Disabled {
		if _, err := s.cfg.Store.RevokeUserSessions(ctx, u.ID, "", s.now(), "user disabled"); err != nil {
			return nil, fmt.Errorf("update user: revoke sessions: %w", err)
		}
	}
	if revoke {
		if u.Generation, err = s.revokeUserTokens(ctx, u.ID); err != nil {
			return nil, fmt.Errorf("update user: %w", err)
		}
	}
	if len(changes) > 0 {
		s.audit(ctx, AuditUserUpdated, a.Client, u.ID, a.SessionID, strings.Join(changes, ", ")+", "+a.by())
	}
	return u, nil
}

// UserSessions returns the user's live sessions, newest first.
func (s *Service) UserSessions(ctx context.Context, a Actor, id string) ([]*Session, error) {
	if err := s.requireAdmin(ctx, a); err != nil {
		return nil, err
	}
	if _, err := s.userByID(ctx, id); err != nil {
		return nil, fmt.Errorf("user sessions: %w", err)
	}
	return s.liveSessions(ctx, id)
}

// RevokeUserSessions signs the user out everywhere: the tutorials' "block
// a user", without disabling the account.
func (s *Service) RevokeUserSessions(ctx context.Context, a Actor, id string) error {
	if err := s.requireAdmin(ctx, a); err != nil {
		return err
	}
	if _, err := s.userByID(ctx, id); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	n, err := s.cfg.Store.RevokeUserSessions(ctx, id, "", s.now(), "revoked by admin")
	if err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	if _, err := s.revokeUserTokens(ctx, id); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	s.audit(ctx, AuditSessionsRevoked, a.Client, id, a.SessionID, fmt.Sprintf("%d sessions ended %s", n, a.by()))
	return nil
}

// ListAudit returns up to limit audit events matching q, newest first,
// and the cursor of the next page ("" on the last). limit 0 means
// DefaultPageSize.
func (s *Service) ListAudit(ctx context.Context, a Actor, q AuditQuery) ([]*AuditEvent, string, error) {
	if err := s.requireAdmin(ctx, a); err != nil {
		return nil, "", err
	}
	switch {
	case q.Limit == 0:
		q.Limit = DefaultPageSize
	case q.Limit < 1 || q.Limit > MaxPageSize:
		return nil, "", invalid("limit", "must be between 1 and %d", MaxPageSize)
	}
	if q.Before != "" && !validID(q.Before) {
		return nil, "", invalid("cursor", "is not a cursor this server returned")
	}
	if q.UserID != "" && !validID(q.UserID) {
		return nil, "", invalid("user", "is not a user id")
	}
	if q.Type != "" && !slices.Contains(AuditTypes, q.Type) {
		return nil, "", invalid("type", "is not an audit event type")
	}
	limit := q.Limit
	q.Limit++ // one extra row tells whether another page exists
	events, err := s.cfg.Audit.List(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("list audit: %w", err)
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		next = events[limit-1].ID
	}
	return events, next, nil
}

// ResetPassword gives the user a new password chosen by an admin (POST
// /admin/users/{id}/password) or the operator (latchkey user passwd), and
// ends every session of the user, with their access tokens: a reset
// follows a forgotten or leaked password, and whoever used the old one
// must be signed out too. The password rules are registration's.
func (s *Service) ResetPassword(ctx context.Context, a Actor, id, password string) error {
	if err := s.requireAdmin(ctx, a); err != nil {
		return err
	}
	if err := ValidatePassword(password); err != nil {
		return err
	}
	u, err := s.userByID(ctx, id)
	if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	var hash string
	if err := s.gate.do(ctx, func() { hash = HashPassword(password, s.cfg.Argon2) }); err != nil {
		return err
	}
	// One write, as in ChangePassword; the generation bump after it is
	// safe to repeat, so a failure there is fixed by asking again.
	n, err := s.cfg.Store.SetPassword(ctx, u.ID, hash, &EndSessions{At: s.now(), Reason: "password reset"})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("reset password: %w", ErrUserNotFound) // deleted meanwhile
	} else if err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	if _, err := s.revokeUserTokens(ctx, u.ID); err != nil {
		return fmt.Errorf("reset password: %w", err)
	}
	s.audit(ctx, AuditPasswordReset, a.Client, u.ID, a.SessionID, fmt.Sprintf("%d sessions ended, %s", n, a.by()))
	return nil
}
