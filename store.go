package latchkey

import (
	"context"
	"time"
)

// Store keeps users, sessions, refresh tokens and signing keys. Every
// backend passes storetest.Run, which checks each promise written here.
//
// Times go in and come out in UTC, truncated to the microsecond by the
// caller (the Service does it), so that every backend round-trips them
// exactly. The optional times (Session.RevokedAt, PreviousRetiredAt) are
// zero when not set and stored as NULL; creation times are required.
//
// A Store provides atomic primitives; the rules (rotation, grace window,
// reuse detection) live in Service.
type Store interface {
	// CreateUser inserts u. It returns ErrConflict if the id is taken or the
	// username is taken regardless of case.
	CreateUser(ctx context.Context, u *User) error

	// UserByID returns the user with id, or ErrNotFound.
	UserByID(ctx context.Context, id string) (*User, error)

	// UserByUsername returns the user whose username equals name without
	// regard to ASCII case, or ErrNotFound.
	UserByUsername(ctx context.Context, name string) (*User, error)

	// UpdateUser writes u's Role and Disabled. It returns ErrNotFound if
	// there is no user with u.ID. Username, PasswordHash, CreatedAt and
	// Generation never change through it (SetPassword and BumpGeneration
	// move the last two), so that an admin's change and a password change
	// made at the same moment never undo each other.
	UpdateUser(ctx context.Context, u *User) error

	// SetPassword writes the user's PasswordHash alone. With end set, the
	// same transaction also revokes every session of the user that is not
	// revoked yet, except end.Except (at end.At, for end.Reason), and
	// deletes the user's MFA challenges, so a password step taken with the
	// old password cannot be finished; it returns how many sessions it
	// revoked. Either all of it happens or none. It returns ErrNotFound if
	// there is no such user.
	SetPassword(ctx context.Context, userID, hash string, end *EndSessions) (int, error)

	// ListUsers returns up to limit users whose id sorts after afterID
	// ("" for the first page), in ascending id order; none if limit <= 0.
	ListUsers(ctx context.Context, afterID string, limit int) ([]*User, error)

	// CreateSession inserts s together with its first refresh token,
	// s.CurrentHash. It returns ErrNotFound if s.UserID does not exist and
	// ErrConflict if the session id or the token hash already exists.
	CreateSession(ctx context.Context, s *Session) error

	// Session returns the session with id, revoked or not, or ErrNotFound.
	Session(ctx context.Context, id string) (*Session, error)

	// SessionByTokenHash returns the session that any refresh token ever
	// issued with this SHA-256 hash belongs to (current, previous or older),
	// or ErrNotFound. Revoked sessions are returned too. Older tokens must
	// stay findable for as long as their session is kept, so that
	// presenting one is recognised as reuse.
	SessionByTokenHash(ctx context.Context, hash []byte) (*Session, error)

	// SessionAndUserByTokenHash is SessionByTokenHash and UserByID of the
	// session's user in one read, for the refresh path: ErrNotFound as
	// SessionByTokenHash.
	SessionAndUserByTokenHash(ctx context.Context, hash []byte) (*Session, *User, error)

	// ListSessions returns the user's sessions that are not revoked, newest
	// first. Expired sessions may be included; the caller filters by time.
	ListSessions(ctx context.Context, userID string) ([]*Session, error)

	// RotateRefreshToken atomically replaces the session's current refresh
	// token: only if the session is not revoked and its CurrentHash still
	// equals r.OldHash, it moves OldHash to PreviousHash (with
	// PreviousRetiredAt = r.At and PreviousSuccessor = r.SealedSuccessor),
	// makes r.NewHash current, sets LastUsedAt = r.At and ExpiresAt =
	// r.ExpiresAt, and records r.NewHash as a token of the session. A
	// NewHash that was already issued is ErrConflict. Otherwise it changes nothing and returns
	// ErrConflict (ErrNotFound if the session does not exist). Across
	// concurrent callers, and across server replicas sharing the database,
	// exactly one rotation of a given OldHash succeeds.
	RotateRefreshToken(ctx context.Context, r Rotation) error

	// RevokeSession marks the session revoked at the given time with a
	// reason, unless it already is (the first revocation is kept). It
	// returns ErrNotFound if the session does not exist.
	RevokeSession(ctx context.Context, id string, at time.Time, reason string) error

	// RevokeUserSessions revokes every session of the user that is not
	// revoked yet, except the session with id except ("" spares none), and
	// returns how many it revoked.
	RevokeUserSessions(ctx context.Context, userID, except string, at time.Time, reason string) (int, error)

	// DeleteExpiredSessions removes sessions (and their tokens) whose
	// ExpiresAt is strictly before the given time, returning how many it removed.
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error)

	// UpdateSigningKeys is the one way keys change. It reads every stored
	// signing key (newest first) and passes them to decide, then applies
	// the changes decide returns, all in one transaction that excludes
	// every other UpdateSigningKeys on the database, in this process and
	// across replicas: of concurrent callers, each decides on what the ones
	// before it left. An error from decide is returned as is and nothing
	// changes. A Create whose ID exists is ErrConflict, an Update or Delete
	// of a missing ID is ErrNotFound; either way nothing changes.
	UpdateSigningKeys(ctx context.Context, decide func(keys []*SigningKey) (KeyChanges, error)) error

	// SigningKeys returns all stored signing keys, newest first.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)

	// BumpGeneration adds one to the user's Generation, recording when, and
	// returns the new value; concurrent bumps are never lost. It returns
	// ErrNotFound if there is no such user.
	BumpGeneration(ctx context.Context, userID string, at time.Time) (int64, error)

	// Revocations returns the sessions revoked at or after since (with
	// when) and the users whose Generation was bumped at or after since
	// (with their current generation and when), each ordered by time, then
	// id. It reads only what changed in the window, never all history.
	Revocations(ctx context.Context, since time.Time) (*Revocations, error)

	// AppendAudit stores events, all or none. An ID that exists is
	// ErrConflict.
	AppendAudit(ctx context.Context, events []*AuditEvent) error

	// ListAudit returns up to q.Limit events matching q, newest first (in
	// descending ID order), only those whose ID sorts before q.Before when
	// it is set.
	ListAudit(ctx context.Context, q AuditQuery) ([]*AuditEvent, error)

	// DeleteAuditBefore deletes up to limit events whose At is strictly
	// before the given time, oldest first, and returns how many it deleted.
	// Concurrent callers never delete an event twice or block each other
	// for long.
	DeleteAuditBefore(ctx context.Context, before time.Time, limit int) (int, error)

	// PutTOTP stores t as the user's pending second-factor enrolment,
	// replacing a pending one. It returns ErrConflict if the user's TOTP
	// is enabled (nothing changes) and ErrNotFound if the user does not
	// exist.
	PutTOTP(ctx context.Context, t *TOTP) error

	// TOTP returns the user's enrolment, pending or enabled, or
	// ErrNotFound.
	TOTP(ctx context.Context, userID string) (*TOTP, error)

	// EnableTOTP turns the user's pending enrolment on: only if it is
	// still pending and still holds secret (the one the confirming code
	// was checked against, not one a second enrolment put in its place),
	// it sets EnabledAt = at and LastStep = step and replaces the user's
	// recovery codes with these hashes, all in one transaction. It returns
	// ErrConflict if the enrolment is enabled already or holds another
	// secret, and ErrNotFound if there is none.
	EnableTOTP(ctx context.Context, userID string, secret []byte, at time.Time, step int64, recovery [][]byte) error

	// SealTOTP replaces the secret of the user's enrolment with its sealed
	// form, only if it is stored unsealed. It returns ErrConflict if it is
	// sealed already and ErrNotFound if there is no enrolment.
	SealTOTP(ctx context.Context, userID string, sealed []byte) error

	// SealedTOTP returns one enrolment whose secret is sealed, any, or
	// ErrNotFound if none is: enough for a server to check at start that
	// its key-encryption key opens them.
	SealedTOTP(ctx context.Context) (*TOTP, error)

	// DeleteTOTP removes the user's enrolment and recovery codes. It
	// returns ErrNotFound if there was no enrolment.
	DeleteTOTP(ctx context.Context, userID string) error

	// UseTOTPStep records that a code of the given time step was accepted:
	// only if the user's TOTP is enabled and its LastStep is below step,
	// it sets LastStep = step. Otherwise it returns ErrConflict (ErrNotFound
	// if there is no enrolment). Of concurrent callers with one step,
	// exactly one succeeds: a code is accepted once.
	UseTOTPStep(ctx context.Context, userID string, step int64) error

	// UseRecoveryCode marks the user's unused recovery code with this
	// SHA-256 hash used at the given time. It returns ErrNotFound if the
	// user has no unused code with that hash; of concurrent callers with
	// one code, exactly one succeeds.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error

	// RecoveryCodesLeft returns how many unused recovery codes the user has.
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)

	// CreateMFAChallenge stores c. A Hash that exists is ErrConflict, an
	// unknown user ErrNotFound.
	CreateMFAChallenge(ctx context.Context, c *MFAChallenge) error

	// MFAChallenge returns the challenge with this hash, expired or not, or
	// ErrNotFound.
	MFAChallenge(ctx context.Context, hash []byte) (*MFAChallenge, error)

	// DeleteMFAChallenge deletes the challenge with this hash. It returns
	// ErrNotFound if there is none; of concurrent callers, exactly one
	// succeeds, which is what makes a challenge single use.
	DeleteMFAChallenge(ctx context.Context, hash []byte) error

	// DeleteExpiredMFAChallenges deletes challenges whose ExpiresAt is
	// strictly before the given time and returns how many it deleted.
	DeleteExpiredMFAChallenges(ctx context.Context, before time.Time) (int, error)

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error

	// Close releases the database.
	Close() error
}

// TOTP is a user's authenticator (RFC 6238) enrolment.
type TOTP struct {
	UserID string
	// Secret is the shared secret, sealed under the key-encryption key
	// when Sealed is set.
	Secret    []byte
	Sealed    bool
	CreatedAt time.Time
	// EnabledAt is zero while the enrolment waits for its first code.
	EnabledAt time.Time
	// LastStep is the time step of the last code accepted; a code of that
	// step or an earlier one is never accepted again.
	LastStep int64
}

// Enabled reports whether the enrolment was confirmed.
func (t *TOTP) Enabled() bool { return !t.EnabledAt.IsZero() }

// MFAChallenge is the first step of a login with a second factor: the
// password was right, a code is still owed. The client holds the token,
// the server only its SHA-256 hash.
type MFAChallenge struct {
	Hash      []byte
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// EndSessions is what SetPassword revokes along with the new password.
type EndSessions struct {
	Except string // a session to keep, or ""
	At     time.Time
	Reason string
}

// Rotation is one step of a refresh token chain, see Store.RotateRefreshToken.
type Rotation struct {
	SessionID       string
	OldHash         []byte
	NewHash         []byte
	SealedSuccessor []byte
	At              time.Time
	// ExpiresAt is the session's new expiry: the idle deadline moves with
	// use, capped by the absolute one.
	ExpiresAt time.Time
}

// Revocations is what Store.Revocations returns.
type Revocations struct {
	Sessions []RevokedSession
	Users    []UserRevocation
}

// RevokedSession is a session ended at RevokedAt.
type RevokedSession struct {
	ID        string
	RevokedAt time.Time
}

// UserRevocation says that the user's tokens of a generation below
// Generation are revoked, since At.
type UserRevocation struct {
	UserID     string
	Generation int64
	At         time.Time
}

// KeyChanges is what one UpdateSigningKeys applies. Update writes a key's
// State, Private, Sealed, ActivatedAt and RetiredAt; ID, Alg and CreatedAt
// never change.
type KeyChanges struct {
	Create []*SigningKey
	Update []*SigningKey
	Delete []string
}
