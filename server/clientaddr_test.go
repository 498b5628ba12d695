package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
)

func TestClientAddr(t *testing.T) {
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 192.0.2.10, fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		peer   string
		xff    []string
		want   string
		others []netip.Prefix
	}{
		{name: "no proxy, no header", peer: "198.51.100.7:4000", want: "198.51.100.7"},
		{name: "untrusted peer's header is ignored", peer: "198.51.100.7:4000", xff: []string{"203.0.113.9"}, want: "198.51.100.7"},
		{name: "trusted proxy names the client", peer: "10.1.2.3:4000", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "spoofed entries left of the real client are ignored", peer: "10.1.2.3:4000", xff: []string{"1.1.1.1, 2.2.2.2, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "chain of trusted proxies", peer: "10.1.2.3:4000", xff: []string{"203.0.113.9, 192.0.2.10, 10.9.9.9"}, want: "203.0.113.9"},
		{name: "several headers read as one list", peer: "10.1.2.3:4000", xff: []string{"1.1.1.1, 203.0.113.9", "10.5.5.5"}, want: "203.0.113.9"},
		{name: "all hops trusted", peer: "10.1.2.3:4000", xff: []string{"10.7.7.7"}, want: "10.7.7.7"},
		{name: "trusted proxy without header", peer: "10.1.2.3:4000", want: "10.1.2.3"},
		{name: "garbage hop stops at the proxy", peer: "10.1.2.3:4000", xff: []string{"203.0.113.9, not-an-ip"}, want: "10.1.2.3"},
		{name: "IPv6 peer", peer: "[2001:db8::1]:4000", want: "2001:db8::1"},
		{name: "IPv6 trusted proxy", peer: "[fd00::5]:4000", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "IPv4-mapped peer", peer: "[::ffff:10.1.2.3]:4000", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "nothing trusted by default", peer: "10.1.2.3:4000", xff: []string{"203.0.113.9"}, want: "10.1.2.3", others: []netip.Prefix{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			tr := trusted
			if tc.others != nil {
				tr = tc.others
			}
			if got := clientAddr(r, tr); got != tc.want {
				t.Errorf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxiesRefusesGarbage(t *testing.T) {
	for _, in := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,,nope"} {
		if _, err := ParseTrustedProxies(in); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted it", in)
		}
	}
	if p, err := ParseTrustedProxies(""); err != nil || len(p) != 0 {
		t.Errorf("ParseTrustedProxies(\"\") = %v, %v; want none", p, err)
	}
}

// TestSpoofedForwardedForChangesNothing: through the real stack, a client
// that is not behind a trusted proxy cannot escape the per-address login
// throttle by sending a new X-Forwarded-For with each attempt, and the
// session records the address the throttle saw.
func TestSpoofedForwardedForChangesNothing(t *testing.T) {
	s := newTestServer(t, serverOpts{mod: func(c *latchkey.Config) {
		c.LoginRatePerIP = latchkey.Rate{Burst: 3, Every: time.Hour}
	}})
	s.svc.CreateUser(t.Context(), "anna", "password123member", latchkey.RoleMember)
	limited := 0
	for i := range 6 {
		r := s.do(t, "POST", "/login", map[string]string{"username": "nobody" + string(rune('a'+i)), "password": "wrong-password"},
			"X-Forwarded-For", "203.0.113."+string(rune('1'+i)))
		if r.status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 3 {
		t.Errorf("%d of 6 spoofed attempts were limited; want 3 (the per-address burst is 3)", limited)
	}
}

// TestTrustedProxyAddressReachesSession: behind a trusted proxy (here the
// test's own loopback), the forwarded address is what the session records.
func TestTrustedProxyAddressReachesSession(t *testing.T) {
	s := newTestServer(t, serverOpts{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	u, err := s.svc.CreateUser(t.Context(), "anna", "password123member", latchkey.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	r := s.do(t, "POST", "/login", map[string]string{"username": "anna", "password": "password123member"},
		"X-Forwarded-For", "1.1.1.1, 203.0.113.5")
	if r.status != http.StatusOK {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	sessions, err := s.store.ListSessions(t.Context(), u.ID)
	if err != nil || len(sessions) != 1 || sessions[0].IP != "203.0.113.5" {
		t.Fatalf("sessions = %+v, %v; want one from 203.0.113.5", sessions, err)
	}
}
