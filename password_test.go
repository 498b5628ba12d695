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
	if _, err := e.Store.SetPassword(t.Context(), u.ID, "$argon2id$v=19$m=4194304,t=64,p=64$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5", nil); err != nil {
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

// TestParseArgon2Params: LATCHKEY_PASSWORD_HASH is written as PHC strings
// write the cost, and anything else is refused with a reason.
func TestParseArgon2Params(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want latchkey.Argon2Params
		err  string // part of the error; "" for none
	}{
		{"default", "m=19456,t=2,p=1", latchkey.DefaultArgon2, ""},
		{"any order, spaces", " p=1, t=3 ,m=12288", latchkey.Argon2Params{Memory: 12288, Time: 3, Threads: 1}, ""},
		{"empty", "", latchkey.Argon2Params{}, "want m=KiB"},
		{"missing p", "m=19456,t=2", latchkey.Argon2Params{}, "p is missing"},
		{"twice", "m=19456,m=19456,t=2,p=1", latchkey.Argon2Params{}, "m is given twice"},
		{"unknown key", "m=19456,t=2,p=1,x=3", latchkey.Argon2Params{}, `unknown key "x"`},
		{"not a number", "m=19MiB,t=2,p=1", latchkey.Argon2Params{}, "m=19MiB is not a whole number"},
		{"negative", "m=19456,t=-2,p=1", latchkey.Argon2Params{}, "t=-2"},
		{"p past a byte", "m=19456,t=2,p=256", latchkey.Argon2Params{}, "p=256"},
		{"m past 32 bits", "m=4294967296,t=2,p=1", latchkey.Argon2Params{}, "m=4294967296"},
		{"a whole PHC string", "$argon2id$v=19$m=19456,t=2,p=1", latchkey.Argon2Params{}, "unknown key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := latchkey.ParseArgon2Params(tc.in)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("ParseArgon2Params(%q): %v", tc.in, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("ParseArgon2Params(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.err)
			case got != tc.want:
				t.Errorf("ParseArgon2Params(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
	// String writes what ParseArgon2Params reads.
	p := latchkey.Argon2Params{Memory: 65536, Time: 3, Threads: 4}
	if back, err := latchkey.ParseArgon2Params(p.String()); err != nil || back != p {
		t.Errorf("ParseArgon2Params(%q) = %+v, %v; want %+v", p.String(), back, err, p)
	}
}

// TestArgon2CheckMinimum: OWASP's five equivalent configurations pass,
// anything with less memory than the row of its own pass count fails, and
// costs a stored hash could not be verified with are refused too.
func TestArgon2CheckMinimum(t *testing.T) {
	tests := []struct {
		name string
		p    latchkey.Argon2Params
		ok   bool
	}{
		{"OWASP t=1", latchkey.Argon2Params{Memory: 47104, Time: 1, Threads: 1}, true},
		{"OWASP t=2 (default)", latchkey.DefaultArgon2, true},
		{"OWASP t=3", latchkey.Argon2Params{Memory: 12288, Time: 3, Threads: 1}, true},
		{"OWASP t=4", latchkey.Argon2Params{Memory: 9216, Time: 4, Threads: 1}, true},
		{"OWASP t=5", latchkey.Argon2Params{Memory: 7168, Time: 5, Threads: 1}, true},
		{"one KiB under t=1", latchkey.Argon2Params{Memory: 47103, Time: 1, Threads: 1}, false},
		{"one KiB under t=2", latchkey.Argon2Params{Memory: 19455, Time: 2, Threads: 1}, false},
		{"one KiB under t=5", latchkey.Argon2Params{Memory: 7167, Time: 5, Threads: 1}, false},
		{"between rows: t=2's memory at t=1", latchkey.Argon2Params{Memory: 30000, Time: 1, Threads: 1}, false},
		{"between rows: more than t=2 needs", latchkey.Argon2Params{Memory: 30000, Time: 2, Threads: 1}, true},
		{"passes past the table keep t=5's floor", latchkey.Argon2Params{Memory: 7168, Time: 10, Threads: 1}, true},
		{"passes past the table do not lower it", latchkey.Argon2Params{Memory: 4096, Time: 20, Threads: 1}, false},
		{"more lanes, same memory", latchkey.Argon2Params{Memory: 19456, Time: 2, Threads: 4}, true},
		{"the tests' cheap cost", latchkeytest.FastArgon2, false},
		{"no passes", latchkey.Argon2Params{Memory: 65536, Time: 0, Threads: 1}, false},
		{"no lanes", latchkey.Argon2Params{Memory: 65536, Time: 2, Threads: 0}, false},
		{"more passes than a hash may hold", latchkey.Argon2Params{Memory: 65536, Time: 65, Threads: 1}, false},
		{"more lanes than a hash may hold", latchkey.Argon2Params{Memory: 65536, Time: 2, Threads: 65}, false},
		{"more memory than a hash may hold", latchkey.Argon2Params{Memory: 1<<21 + 1, Time: 2, Threads: 1}, false},
		{"the most a stored hash may hold", latchkey.Argon2Params{Memory: 1 << 21, Time: 64, Threads: 64}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.CheckMinimum(); (err == nil) != tc.ok {
				t.Errorf("%s.CheckMinimum() = %v, want ok=%v", tc.p, err, tc.ok)
			}
		})
	}
}

func TestMinArgon2Memory(t *testing.T) {
	for tp, want := range map[uint32]uint32{0: 0, 1: 47104, 2: 19456, 3: 12288, 4: 9216, 5: 7168, 6: 7168, 64: 7168} {
		if got := latchkey.MinArgon2Memory(tp); got != want {
			t.Errorf("MinArgon2Memory(%d) = %d, want %d", tp, got, want)
		}
	}
}
