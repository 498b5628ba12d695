package latchkey_test

import (
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey"
	"github.com/latchkey-dev/latchkey/token"
)

// TestRevocationFeed: each revoking action puts the right entry in the
// feed, tokens carry the generation the feed compares with, and entries
// leave the feed once every token they refuse has expired.
func TestRevocationFeed(t *testing.T) {
	e := newTestService(t, nil)
	ctx := t.Context()
	admin := e.MustUser(t, "john", "password123admin", latchkey.RoleAdmin)
	anna := e.MustUser(t, "anna", "password123member", latchkey.RoleMember)
	bob := e.MustUser(t, "bobby", "password123member", latchkey.RoleMember)

	claimsOf := func(p *latchkey.TokenPair) *token.Claims {
		c, err := e.Verifier.Verify(ctx, p.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := claimsOf(e.MustLogin(t, "anna", "password123member"))
	if before.Generation != 0 {
		t.Fatalf("first token's gen = %d, want 0", before.Generation)
	}
	feed, err := e.Service.Revocations(ctx)
	if err != nil || len(feed.Sessions)+len(feed.Users) != 0 {
		t.Fatalf("feed before anything = %+v, %v; want empty", feed, err)
	}

	// A logout lists the session; a demotion lists the user with the new
	// generation; tokens issued after it carry that generation.
	bp := e.MustLogin(t, "bobby", "password123member")
	if err := e.Service.Logout(ctx, bp.RefreshToken, latchkey.Client{}); err != nil {
		t.Fatal(err)
	}
	promote := latchkey.RoleAdmin
	if _, err := e.Service.UpdateUser(ctx, as(admin), anna.ID, latchkey.UserUpdate{Role: &promote}); err != nil {
		t.Fatal(err)
	}
	after := claimsOf(e.MustLogin(t, "anna", "password123member"))
	feed, err = e.Service.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed.Sessions) != 1 || feed.Sessions[0].ID != claimsOf(bp).SessionID {
		t.Errorf("sessions = %+v, want bobby's logged-out session", feed.Sessions)
	}
	if len(feed.Users) != 1 || feed.Users[0].UserID != anna.ID || feed.Users[0].Generation != 1 {
		t.Fatalf("users = %+v, want anna at generation 1", feed.Users)
	}
	refused := func(c *token.Claims) bool { return c.Generation < feed.Users[0].Generation }
	if !refused(before) || refused(after) || after.Role != "admin" {
		t.Errorf("gen before %d, after %d (role %s); the feed must refuse the first and not the second",
			before.Generation, after.Generation, after.Role)
	}

	// Sign-out everywhere and disabling list the user too.
	if err := e.Service.LogoutAll(ctx, bob.ID, "", latchkey.Client{}); err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := e.Service.UpdateUser(ctx, as(admin), anna.ID, latchkey.UserUpdate{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	feed, _ = e.Service.Revocations(ctx)
	gens := map[string]int64{}
	for _, u := range feed.Users {
		gens[u.UserID] = u.Generation
	}
	if gens[anna.ID] != 2 || gens[bob.ID] != 1 || len(feed.Sessions) != 3 {
		t.Errorf("after logout-all and disable: users %v, %d sessions; want anna 2, bobby 1, and anna's two sessions added", gens, len(feed.Sessions))
	}

	// A change that revokes nothing adds nothing.
	no := false
	e.Service.UpdateUser(ctx, as(admin), bob.ID, latchkey.UserUpdate{Disabled: &no})
	if f, _ := e.Service.Revocations(ctx); len(f.Users) != len(feed.Users) {
		t.Errorf("enabling an enabled user added a feed entry")
	}

	// Entries stay for the access TTL plus leeway, then leave.
	e.Clock.Advance(latchkey.DefaultAccessTTL + token.DefaultLeeway)
	if f, _ := e.Service.Revocations(ctx); len(f.Users) == 0 || len(f.Sessions) == 0 {
		t.Errorf("entries left the feed while a token they refuse could still be valid")
	}
	e.Clock.Advance(time.Second)
	if f, _ := e.Service.Revocations(ctx); len(f.Users)+len(f.Sessions) != 0 {
		t.Errorf("feed after the window = %+v; want empty", f)
	}
}
