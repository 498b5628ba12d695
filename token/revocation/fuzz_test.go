package revocation

import "testing"

// FuzzParse: whatever the network sends, parse either refuses it or
// returns a list that holds only what the contract allows: named sessions,
// and users with a generation that is not negative, from the right issuer.
func FuzzParse(f *testing.F) {
	f.Add(newDoc(fixedNow, []string{"s1", "s2"}, map[string]int64{"u1": 3}))
	f.Add(newDoc(fixedNow, nil, nil))
	f.Add([]byte(`{"issuer":"` + testIssuer + `","generatedAt":"2030-01-02T03:04:05Z","sessions":[{"sid":""}],"users":[]}`))
	f.Add([]byte(`{"issuer":"` + testIssuer + `","generatedAt":"2030-01-02T03:04:05Z","sessions":[],"users":[{"sub":"u","gen":-1},{"sub":"u","gen":2}]}`))
	f.Add([]byte(`{"issuer":"https://evil.test","generatedAt":"2030-01-02T03:04:05Z","sessions":[],"users":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := parse(body, testIssuer)
		if err != nil {
			return
		}
		if l.generatedAt.IsZero() {
			t.Fatalf("accepted a document without generatedAt: %q", body)
		}
		for sid := range l.sessions {
			if sid == "" {
				t.Fatalf("accepted an empty sid from %q", body)
			}
		}
		for sub, gen := range l.users {
			if sub == "" || gen < 0 {
				t.Fatalf("accepted user %q gen %d from %q", sub, gen, body)
			}
		}
	})
}
