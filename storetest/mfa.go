package storetest

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func newTestTOTP(userID string, secret string) *latchkey.TOTP {
	return &latchkey.TOTP{UserID: userID, Secret: []byte(secret), Sealed: true, CreatedAt: t0}
}

func mustTOTP(tb testing.TB, s latchkey.Store, userID string) *latchkey.TOTP {
	tb.Helper()
	got, err := s.TOTP(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("TOTP(%q): %v", userID, err)
	}
	return got
}

func testTOTPEnrolment(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "u1", "alice")
	if err := s.PutTOTP(ctx, newTestTOTP("nobody", "x")); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("PutTOTP(unknown user) = %v, want ErrNotFound", err)
	}
	if _, err := s.TOTP(ctx, "u1"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Fatalf("TOTP before enrolment = %v, want ErrNotFound", err)
	}
	if err := s.PutTOTP(ctx, newTestTOTP("u1", "first secret")); err != nil {
		t.Fatalf("PutTOTP: %v", err)
	}
	// A second start replaces a pending enrolment.
	second := newTestTOTP("u1", "second secret")
	second.Sealed = false
	second.CreatedAt = t0.Add(time.Minute)
	if err := s.PutTOTP(ctx, second); err != nil {
		t.Fatalf("PutTOTP over a pending one: %v", err)
	}
	got := mustTOTP(t, s, "u1")
	checkBytes(t, "Secret", got.Secret, []byte("second secret"))
	checkTime(t, "CreatedAt", got.CreatedAt, second.CreatedAt)
	checkTime(t, "EnabledAt", got.EnabledAt, time.Time{})
	if got.Sealed || got.Enabled() || got.LastStep != 0 || got.UserID != "u1" {
		t.Errorf("pending enrolment = %+v", got)
	}

	enabledAt := t0.Add(2 * time.Minute)
	// A code checked against the first secret cannot turn on the second.
	if err := s.EnableTOTP(ctx, "u1", []byte("first secret"), enabledAt, 1000, [][]byte{hash("c1")}); !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("EnableTOTP with a replaced secret = %v, want ErrConflict", err)
	}
	if got := mustTOTP(t, s, "u1"); got.Enabled() {
		t.Fatal("a replaced enrolment was enabled")
	}
	if err := s.EnableTOTP(ctx, "u1", []byte("second secret"), enabledAt, 1000, [][]byte{hash("c1"), hash("c2")}); err != nil {
		t.Fatalf("EnableTOTP: %v", err)
	}
	got = mustTOTP(t, s, "u1")
	checkTime(t, "EnabledAt", got.EnabledAt, enabledAt)
	if !got.Enabled() || got.LastStep != 1000 {
		t.Errorf("enabled enrolment = %+v, want enabled with LastStep 1000", got)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "u1"); err != nil || n != 2 {
		t.Errorf("RecoveryCodesLeft = %d, %v; want 2", n, err)
	}

	// Once enabled, nothing replaces it.
	if err := s.PutTOTP(ctx, newTestTOTP("u1", "attacker's secret")); !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("PutTOTP over an enabled one = %v, want ErrConflict", err)
	}
	if err := s.EnableTOTP(ctx, "u1", []byte("second secret"), enabledAt, 2000, [][]byte{hash("c3")}); !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("EnableTOTP twice = %v, want ErrConflict", err)
	}
	got = mustTOTP(t, s, "u1")
	checkBytes(t, "Secret after refused writes", got.Secret, []byte("second secret"))
	if got.LastStep != 1000 {
		t.Errorf("LastStep after refused writes = %d, want 1000", got.LastStep)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, "u1"); n != 2 {
		t.Errorf("RecoveryCodesLeft after a refused EnableTOTP = %d, want 2", n)
	}
	mustCreateUser(t, s, "u2", "bob")
	if err := s.EnableTOTP(ctx, "u2", []byte("x"), enabledAt, 1, nil); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("EnableTOTP without an enrolment = %v, want ErrNotFound", err)
	}

	// A secret stored before a key-encryption key was set is sealed once.
	if _, err := s.SealedTOTP(ctx); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SealedTOTP with none sealed = %v, want ErrNotFound", err)
	}
	if err := s.SealTOTP(ctx, "u1", []byte("sealed form")); err != nil {
		t.Fatalf("SealTOTP: %v", err)
	}
	got = mustTOTP(t, s, "u1")
	checkBytes(t, "Secret after SealTOTP", got.Secret, []byte("sealed form"))
	if !got.Sealed || !got.Enabled() || got.LastStep != 1000 {
		t.Errorf("after SealTOTP = %+v, want sealed and otherwise unchanged", got)
	}
	if err := s.SealTOTP(ctx, "u1", []byte("sealed twice")); !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("SealTOTP of a sealed secret = %v, want ErrConflict", err)
	}
	checkBytes(t, "Secret after a refused SealTOTP", mustTOTP(t, s, "u1").Secret, []byte("sealed form"))
	if err := s.SealTOTP(ctx, "u2", []byte("x")); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("SealTOTP without an enrolment = %v, want ErrNotFound", err)
	}
	if got, err := s.SealedTOTP(ctx); err != nil || got.UserID != "u1" || !bytes.Equal(got.Secret, []byte("sealed form")) {
		t.Errorf("SealedTOTP = %+v, %v; want u1's sealed enrolment", got, err)
	}
}

func enrolled(tb testing.TB, s latchkey.Store, userID, username string, step int64, codes ...string) {
	tb.Helper()
	mustCreateUser(tb, s, userID, username)
	if err := s.PutTOTP(tb.Context(), newTestTOTP(userID, "secret of "+username)); err != nil {
		tb.Fatalf("PutTOTP: %v", err)
	}
	hashes := make([][]byte, len(codes))
	for i, c := range codes {
		hashes[i] = hash(c)
	}
	if err := s.EnableTOTP(tb.Context(), userID, []byte("secret of "+username), t0, step, hashes); err != nil {
		tb.Fatalf("EnableTOTP: %v", err)
	}
}

func testUseTOTPStep(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	enrolled(t, s, "u1", "alice", 1000)
	mustCreateUser(t, s, "u2", "bob")
	if err := s.PutTOTP(ctx, newTestTOTP("u2", "pending")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		user   string
		step   int64
		want   error
		stepAt int64 // LastStep afterwards
	}{
		{"the confirming code's step", "u1", 1000, latchkey.ErrConflict, 1000},
		{"an earlier step", "u1", 999, latchkey.ErrConflict, 1000},
		{"the next step", "u1", 1001, nil, 1001},
		{"the same code again", "u1", 1001, latchkey.ErrConflict, 1001},
		{"a step two ahead", "u1", 1003, nil, 1003},
		{"the step skipped over", "u1", 1002, latchkey.ErrConflict, 1003},
		{"a pending enrolment", "u2", 5000, latchkey.ErrConflict, 0},
		{"no enrolment", "nobody", 5000, latchkey.ErrNotFound, -1},
	}
	for _, tc := range tests {
		err := s.UseTOTPStep(ctx, tc.user, tc.step)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: UseTOTPStep(%s, %d) = %v, want %v", tc.name, tc.user, tc.step, err, tc.want)
		}
		if tc.stepAt >= 0 {
			if got := mustTOTP(t, s, tc.user); got.LastStep != tc.stepAt {
				t.Errorf("%s: LastStep = %d, want %d", tc.name, got.LastStep, tc.stepAt)
			}
		}
	}

	// A code replayed in parallel, as across replicas: accepted once.
	const n = 20
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.UseTOTPStep(ctx, "u1", 2000)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, latchkey.ErrConflict):
				t.Errorf("concurrent UseTOTPStep: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of %d concurrent uses of one step succeeded, want exactly 1", ok.Load(), n)
	}
}

func testRecoveryCodes(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	enrolled(t, s, "u1", "alice", 1, "c1", "c2", "c3")
	enrolled(t, s, "u2", "bob", 1, "b1")
	at := t0.Add(time.Hour)
	tests := []struct {
		name string
		user string
		code string
		want error
	}{
		{"an unused code", "u1", "c1", nil},
		{"the same code again", "u1", "c1", latchkey.ErrNotFound},
		{"a code never issued", "u1", "zz", latchkey.ErrNotFound},
		{"another user's code", "u1", "b1", latchkey.ErrNotFound},
		{"its owner uses it", "u2", "b1", nil},
	}
	for _, tc := range tests {
		err := s.UseRecoveryCode(ctx, tc.user, hash(tc.code), at)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: UseRecoveryCode = %v, want %v", tc.name, err, tc.want)
		}
	}
	if n, err := s.RecoveryCodesLeft(ctx, "u1"); err != nil || n != 2 {
		t.Errorf("RecoveryCodesLeft(u1) = %d, %v; want 2", n, err)
	}

	const n = 20
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.UseRecoveryCode(ctx, "u1", hash("c2"), at)
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, latchkey.ErrNotFound):
				t.Errorf("concurrent UseRecoveryCode: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of %d concurrent uses of one recovery code succeeded, want exactly 1", ok.Load(), n)
	}

	// Turning TOTP off removes the codes; a new enrolment has only its own.
	if err := s.DeleteTOTP(ctx, "u1"); err != nil {
		t.Fatalf("DeleteTOTP: %v", err)
	}
	if err := s.DeleteTOTP(ctx, "u1"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("DeleteTOTP twice = %v, want ErrNotFound", err)
	}
	if _, err := s.TOTP(ctx, "u1"); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("TOTP after DeleteTOTP = %v, want ErrNotFound", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "u1"); err != nil || n != 0 {
		t.Errorf("RecoveryCodesLeft after DeleteTOTP = %d, %v; want 0", n, err)
	}
	if err := s.UseRecoveryCode(ctx, "u1", hash("c3"), at); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("a code of the removed enrolment = %v, want ErrNotFound", err)
	}
	if err := s.PutTOTP(ctx, newTestTOTP("u1", "new")); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableTOTP(ctx, "u1", []byte("new"), at, 1, [][]byte{hash("n1")}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, "u1"); n != 1 {
		t.Errorf("RecoveryCodesLeft after re-enrolment = %d, want 1", n)
	}
	if n, _ := s.RecoveryCodesLeft(ctx, "u2"); n != 0 {
		t.Errorf("RecoveryCodesLeft(u2) = %d, want 0: its one code was used", n)
	}
}

func testMFAChallenges(t *testing.T, s latchkey.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, "u1", "alice")
	c := &latchkey.MFAChallenge{Hash: hash("m1"), UserID: "u1", CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
	if err := s.CreateMFAChallenge(ctx, c); err != nil {
		t.Fatalf("CreateMFAChallenge: %v", err)
	}
	if err := s.CreateMFAChallenge(ctx, c); !errors.Is(err, latchkey.ErrConflict) {
		t.Errorf("CreateMFAChallenge twice = %v, want ErrConflict", err)
	}
	if err := s.CreateMFAChallenge(ctx, &latchkey.MFAChallenge{Hash: hash("m2"), UserID: "nobody", CreatedAt: t0, ExpiresAt: t0}); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("CreateMFAChallenge(unknown user) = %v, want ErrNotFound", err)
	}
	got, err := s.MFAChallenge(ctx, hash("m1"))
	if err != nil {
		t.Fatalf("MFAChallenge: %v", err)
	}
	checkBytes(t, "Hash", got.Hash, c.Hash)
	checkTime(t, "CreatedAt", got.CreatedAt, c.CreatedAt)
	checkTime(t, "ExpiresAt", got.ExpiresAt, c.ExpiresAt)
	if got.UserID != "u1" {
		t.Errorf("UserID = %q", got.UserID)
	}
	if _, err := s.MFAChallenge(ctx, hash("m2")); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("MFAChallenge(unknown) = %v, want ErrNotFound", err)
	}

	// Single use: of concurrent deletes, one succeeds.
	const n = 20
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			err := s.DeleteMFAChallenge(ctx, hash("m1"))
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, latchkey.ErrNotFound):
				t.Errorf("concurrent DeleteMFAChallenge: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d of %d concurrent deletes of one challenge succeeded, want exactly 1", ok.Load(), n)
	}
	if _, err := s.MFAChallenge(ctx, hash("m1")); !errors.Is(err, latchkey.ErrNotFound) {
		t.Errorf("MFAChallenge after delete = %v, want ErrNotFound", err)
	}

	for i, exp := range []time.Duration{-time.Minute, -time.Microsecond, 0, time.Minute} {
		if err := s.CreateMFAChallenge(ctx, &latchkey.MFAChallenge{
			Hash: hash(string(rune('a' + i))), UserID: "u1", CreatedAt: t0, ExpiresAt: t0.Add(exp),
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteExpiredMFAChallenges(ctx, t0); err != nil || n != 2 {
		t.Errorf("DeleteExpiredMFAChallenges = %d, %v; want 2 (strictly before)", n, err)
	}
	for i, wantKept := range []bool{false, false, true, true} {
		_, err := s.MFAChallenge(ctx, hash(string(rune('a'+i))))
		if kept := err == nil; kept != wantKept {
			t.Errorf("challenge %d kept = %v, want %v (%v)", i, kept, wantKept, err)
		}
	}
}
