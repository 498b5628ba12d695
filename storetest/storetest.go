// Package storetest is the conformance suite every latchkey.Store and
// latchkey.Limiter implementation passes, in the manner of dex's
// storage/conformance: a backend's test calls Run (or RunLimiter) with a
// function that opens a fresh, empty instance, and every promise written
// in the interface comments is checked against it, concurrency included.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) latchkey.Store {
//			s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

// Run checks s against the latchkey.Store contract. open is called once
// per subtest and must return an empty store; it is responsible for
// closing it (with t.Cleanup) and for skipping (t.Skip) when the backend
// is not available.
func Run(t *testing.T, open func(t *testing.T) latchkey.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s latchkey.Store)
	}{
		{"Ping", testPing},

		{"CreateUserRoundTrip", testCreateUserRoundTrip},
		{"UserByIDNotFound", testUserByIDNotFound},
		{"CreateUserDuplicateID", testCreateUserDuplicateID},
		{"CreateUserUsernameTakenAnyCase", testCreateUserUsernameTakenAnyCase},
		{"UserByUsernameIgnoresCase", testUserByUsernameIgnoresCase},
		{"UpdateUser", testUpdateUser},
		{"UpdateUserNotFound", testUpdateUserNotFound},
		{"SetPassword", testSetPassword},
		{"ListUsersPagesByID", testListUsersPagesByID},
		{"RefusedUserNotStored", testRefusedUserNotStored},

		{"CreateSessionRoundTrip", testCreateSessionRoundTrip},
		{"CreateSessionUnknownUser", testCreateSessionUnknownUser},
		{"CreateSessionDuplicates", testCreateSessionDuplicates},
		{"SessionNotFound", testSessionNotFound},
		{"SessionByTokenHashFindsEveryToken", testSessionByTokenHashFindsEveryToken},
		{"SessionAndUserByTokenHash", testSessionAndUserByTokenHash},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"RotateRefreshTokenRefused", testRotateRefreshTokenRefused},
		{"RotateRefreshTokenConcurrent", testRotateRefreshTokenConcurrent},
		{"RotateRefreshTokenConcurrentSessions", testRotateRefreshTokenConcurrentSessions},
		{"RevokeSession", testRevokeSession},
		{"RevokeSessionNotFound", testRevokeSessionNotFound},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"ListSessions", testListSessions},
		{"DeleteExpiredSessions", testDeleteExpiredSessions},
		{"BumpGeneration", testBumpGeneration},
		{"Revocations", testRevocations},

		{"SigningKeys", testSigningKeys},
		{"SigningKeyDuplicateID", testSigningKeyDuplicateID},
		{"UpdateSigningKeys", testUpdateSigningKeys},
		{"UpdateSigningKeysConcurrent", testUpdateSigningKeysConcurrent},

		{"TOTPEnrolment", testTOTPEnrolment},
		{"UseTOTPStep", testUseTOTPStep},
		{"RecoveryCodes", testRecoveryCodes},
		{"MFAChallenges", testMFAChallenges},

		{"AuditAppendAndList", testAuditAppendAndList},
		{"AuditAppendAllOrNone", testAuditAppendAllOrNone},
		{"AuditDeleteBefore", testAuditDeleteBefore},
		{"AuditDeleteConcurrent", testAuditDeleteConcurrent},

		{"TimesRoundTripInUTC", testTimesRoundTripInUTC},
		{"ZeroTimesRoundTrip", testZeroTimesRoundTrip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, open(t))
		})
	}
}

func testPing(t *testing.T, s latchkey.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// t0 is the suite's reference time: UTC, with a non-zero microsecond part
// and nothing below it, as the Service writes times.
var t0 = time.Date(2025, time.March, 14, 15, 9, 26, 535897000, time.UTC)

// hash returns a stand-in for a refresh token's SHA-256 hash.
func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// newTestUser returns a user with the given id and username, not stored.
func newTestUser(id, username string) *latchkey.User {
	return &latchkey.User{
		ID:           id,
		Username:     username,
		Role:         latchkey.RoleMember,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		CreatedAt:    t0,
	}
}

// mustCreateUser stores a new user with the given id and username.
func mustCreateUser(tb testing.TB, s latchkey.Store, id, username string) *latchkey.User {
	tb.Helper()
	u := newTestUser(id, username)
	if err := s.CreateUser(context.Background(), u); err != nil {
		tb.Fatalf("CreateUser(%q): %v", id, err)
	}
	return u
}

// newTestSession returns a live session of userID whose first refresh
// token is hash(id + "/0"), not stored.
func newTestSession(id, userID string) *latchkey.Session {
	return &latchkey.Session{
		ID:          id,
		UserID:      userID,
		CreatedAt:   t0,
		LastUsedAt:  t0,
		ExpiresAt:   t0.Add(7 * 24 * time.Hour),
		UserAgent:   "storetest/1.0",
		IP:          "192.0.2.1",
		CurrentHash: hash(id + "/0"),
	}
}

// mustCreateSession stores sess.
func mustCreateSession(tb testing.TB, s latchkey.Store, sess *latchkey.Session) *latchkey.Session {
	tb.Helper()
	if err := s.CreateSession(context.Background(), sess); err != nil {
		tb.Fatalf("CreateSession(%q): %v", sess.ID, err)
	}
	return sess
}

// mustSession reads the session with id.
func mustSession(tb testing.TB, s latchkey.Store, id string) *latchkey.Session {
	tb.Helper()
	sess, err := s.Session(context.Background(), id)
	if err != nil {
		tb.Fatalf("Session(%q): %v", id, err)
	}
	return sess
}

// checkTime reports a difference between two times, or a result that is
// not in UTC.
func checkTime(tb testing.TB, what string, got, want time.Time) {
	tb.Helper()
	if !got.Equal(want) {
		tb.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		tb.Errorf("%s location = %v, want UTC", what, got.Location())
	}
	if want.IsZero() && !got.IsZero() {
		tb.Errorf("%s = %v, want the zero time", what, got)
	}
}

// checkBytes compares byte slices, treating nil and empty as equal.
func checkBytes(tb testing.TB, what string, got, want []byte) {
	tb.Helper()
	if !bytes.Equal(got, want) {
		tb.Errorf("%s = %x, want %x", what, got, want)
	}
}

func checkUser(tb testing.TB, got, want *latchkey.User) {
	tb.Helper()
	if got.ID != want.ID || got.Username != want.Username || got.Role != want.Role ||
		got.PasswordHash != want.PasswordHash || got.Disabled != want.Disabled {
		tb.Errorf("user = %+v, want %+v", *got, *want)
	}
	checkTime(tb, "User.CreatedAt", got.CreatedAt, want.CreatedAt)
}

func checkSession(tb testing.TB, got, want *latchkey.Session) {
	tb.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.RevokeReason != want.RevokeReason ||
		got.UserAgent != want.UserAgent || got.IP != want.IP {
		tb.Errorf("session = %+v, want %+v", *got, *want)
	}
	checkTime(tb, "Session.CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(tb, "Session.LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	checkTime(tb, "Session.ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkTime(tb, "Session.RevokedAt", got.RevokedAt, want.RevokedAt)
	checkTime(tb, "Session.PreviousRetiredAt", got.PreviousRetiredAt, want.PreviousRetiredAt)
	checkBytes(tb, "Session.CurrentHash", got.CurrentHash, want.CurrentHash)
	checkBytes(tb, "Session.PreviousHash", got.PreviousHash, want.PreviousHash)
	checkBytes(tb, "Session.PreviousSuccessor", got.PreviousSuccessor, want.PreviousSuccessor)
}

// ids returns the ids of users or sessions, for messages and comparisons.
func ids[T any](list []T, id func(T) string) []string {
	out := make([]string, len(list))
	for i, x := range list {
		out[i] = id(x)
	}
	return out
}

func userID(u *latchkey.User) string       { return u.ID }
func sessionID(s *latchkey.Session) string { return s.ID }
