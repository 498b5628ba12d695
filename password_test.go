package latchkey_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/latchkeytest"
)

// TestVerifyPasswordRefusesPlantedHashes: a stored hash is input too. A
// corrupted or planted row must be refused before argon2id runs, so that
// it cannot make one login allocate gigabytes or compute for minutes, and
// must never verify.
func TestVerifyPasswordRefusesPlantedHashes(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	b64 := func(n int) string { return base64.RawStdEncoding.EncodeToString([]byte(strings.Repeat("k", n))) }
	tests := []struct {
		name string
		hash string
	}{
		{"empty", ""},
		{"bcrypt", "$2b$10$abcdefghijklmnopqrstuv"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"memory zero", "$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key},
		{"memory 4 GiB", "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key},
		{"memory overflows uint32", "$argon2id$v=19$m=99999999999,t=1,p=1$" + salt + "$" + key},
		{"time zero", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"time 1000", "$argon2id$v=19$m=64,t=1000,p=1$" + salt + "$" + key},
		{"threads zero", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"threads 255", "$argon2id$v=19$m=64,t=1,p=255$" + salt + "$" + key},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$" + b64(4) + "$" + key},
		{"salt 1 MiB", "$argon2id$v=19$m=64,t=1,p=1$" + b64(1<<20) + "$" + key},
		{"key too short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64(8)},
		{"key 1 MiB", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + b64(1<<20)},
		{"salt not base64", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, _, err := latchkey.VerifyPassword(tc.hash, "password123", latchkey.DefaultArgon2)
			if ok || err == nil {
				t.Errorf("VerifyPassword(%.60q) = %v, %v; want false and an error", tc.hash, ok, err)
			}
		})
	}
}

// TestLoginWithPlantedHash: a user row whose hash was replaced by an
// unusable one fails the login with a server error (the cause is logged),
// not with a crash, and never with a session.
func TestLoginWithPlantedHash(t *testing.T) {
	e := newTestService(t, nil)
	u := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	u.PasswordHash = "$argon2id$v=19$m=4194304,t=64,p=64$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5"
	if err := e.Store.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	p, err := e.Service.Login(t.Context(), "anna", "password123member", latchkey.Client{})
	if p != nil || err == nil || errors.Is(err, latchkey.ErrInvalidCredentials) {
		t.Fatalf("Login with a planted hash = %v, %v; want no tokens and a server error", p, err)
	}
	if sessions, _ := e.Store.ListSessions(t.Context(), u.ID); len(sessions) != 0 {
		t.Errorf("a refused login left %d sessions", len(sessions))
	}
}

// TestPasswordHashUpgradeBoundary: a hash of exactly the wanted cost is
// not rehashed; any weaker dimension is.
func TestPasswordHashUpgradeBoundary(t *testing.T) {
	want := latchkeytest.FastArgon2
	tests := []struct {
		name   string
		params latchkey.Argon2Params
		rehash bool
	}{
		{"same cost", want, false},
		{"less memory", latchkey.Argon2Params{Memory: want.Memory - 1, Time: want.Time, Threads: want.Threads}, true},
		{"more memory", latchkey.Argon2Params{Memory: want.Memory * 2, Time: want.Time, Threads: want.Threads}, false},
		{"other threads", latchkey.Argon2Params{Memory: want.Memory, Time: want.Time, Threads: want.Threads + 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := latchkey.HashPassword("password123", tc.params)
			ok, rehash, err := latchkey.VerifyPassword(h, "password123", want)
			if !ok || err != nil || rehash != tc.rehash {
				t.Errorf("VerifyPassword = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.rehash)
			}
		})
	}
}
