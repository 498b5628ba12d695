package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestDemoFollowsRevocations: in `latchkey demo` the books server follows
// the auth server's revocation feed every LATCHKEY_REVOCATION_POLL, so a
// logged-out token is refused within the poll plus one second and /readyz
// shows the feed; with 0 the feed is off and the token lives until it
// expires, as before.
func TestDemoFollowsRevocations(t *testing.T) {
	for _, tc := range []struct {
		poll   string
		follow bool
	}{
		{"1s", true},
		{"0", false},
	} {
		t.Run("LATCHKEY_REVOCATION_POLL="+tc.poll, func(t *testing.T) {
			authURL, booksURL, _ := startDemo(t, t.TempDir(), map[string]string{"LATCHKEY_REVOCATION_POLL": tc.poll})
			st, body := call(t, "GET", booksURL+"/readyz", "", nil)
			var ready struct {
				Revocations *struct {
					Loaded bool `json:"loaded"`
				} `json:"revocations"`
			}
			if err := json.Unmarshal(body, &ready); err != nil || st != 200 || (ready.Revocations != nil) != tc.follow ||
				(tc.follow && !ready.Revocations.Loaded) {
				t.Fatalf("/readyz = %d %s; want the feed shown, loaded, exactly when it is followed", st, body)
			}

			access, refresh := loginAs(t, authURL, "anna", "password123member")
			if st, b := call(t, "GET", booksURL+"/books", access, nil); st != 200 {
				t.Fatalf("before logout: %d %s", st, b)
			}
			if st, b := call(t, "POST", authURL+"/logout", "", map[string]string{"refreshToken": refresh}); st != 204 {
				t.Fatalf("logout: %d %s", st, b)
			}
			at := time.Now()
			bound := time.Second + time.Second // the poll plus one second
			for {
				st, b := call(t, "GET", booksURL+"/books", access, nil)
				took := time.Since(at)
				if st == 401 {
					if !tc.follow {
						t.Fatalf("refused with the feed off: %s", b)
					}
					if took > bound {
						t.Errorf("refused %v after logout, over %v", took.Round(time.Millisecond), bound)
					}
					t.Logf("refused %v after logout", took.Round(time.Millisecond))
					return
				}
				if st != 200 || !strings.HasPrefix(string(b), "[") {
					t.Fatalf("GET /books: %d %s", st, b)
				}
				if took > 2*bound {
					if tc.follow {
						t.Fatalf("still accepted %v after logout", took.Round(time.Millisecond))
					}
					return // off: accepted until it expires
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestPasswordChangeReachesBooks: after a password change, the books
// server refuses the access tokens of the user's other sessions within
// the poll interval plus a second, and keeps accepting the one of the
// session that changed it.
func TestPasswordChangeReachesBooks(t *testing.T) {
	authURL, booksURL, _ := startDemo(t, t.TempDir(), map[string]string{"LATCHKEY_REVOCATION_POLL": "1s"})
	here, _ := loginAs(t, authURL, "anna", "password123member")
	other, _ := loginAs(t, authURL, "anna", "password123member")
	if st, b := call(t, "POST", authURL+"/me/password", here, map[string]string{"currentPassword": "password123member", "newPassword": "password456member"}); st != 204 {
		t.Fatalf("POST /me/password: %d %s", st, b)
	}
	at := time.Now()
	bound := 2 * time.Second
	var took time.Duration
	for {
		sent := time.Now() // the request's own round trip is not the feed's
		st, b := call(t, "GET", booksURL+"/books", other, nil)
		took = sent.Sub(at)
		if st == 401 {
			break
		}
		if st != 200 || took > 2*bound {
			t.Fatalf("the other session's token at the books server %v after the change: %d %s", took.Round(time.Millisecond), st, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took > bound {
		t.Errorf("refused %v after the change, over %v", took.Round(time.Millisecond), bound)
	}
	time.Sleep(1500 * time.Millisecond) // past another poll
	if st, b := call(t, "GET", booksURL+"/books", here, nil); st != 200 {
		t.Errorf("the changing session's token at the books server: %d %s; want 200", st, b)
	}
}
