package books

import (
	"context"
	"testing"

	"github.com/latchkey-dev/latchkey/internal/decodetest"
)

// TestDecodeBodies runs the table of bodies shared with the auth server's
// decoder, so that the twins cannot answer one body differently.
func TestDecodeBodies(t *testing.T) {
	decodetest.Run(t, decode, func(err error) decodetest.Answer {
		e := errorFor(err)
		return decodetest.Answer{Status: e.status, Code: e.code, Description: e.description}
	})
}

// TestHostileBodiesOverHTTP sends every body the shared table refuses to
// each endpoint that reads a body, through authentication and the store:
// each gets the table's status and code, no challenge, and writes nothing.
// (The table's field names are no endpoint's, so a body refused for a
// field there is refused here as an unknown field, with the same code.)
func TestHostileBodiesOverHTTP(t *testing.T) {
	ctx := context.Background()
	endpoints := []struct {
		method, path string
		admin        bool
	}{
		{"POST", "/books", true},
		{"PUT", "/books/1", true},
		{"POST", "/articles", false},
	}
	for _, ep := range endpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			env := newTestEnv(t)
			before, err := env.store.Book(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			tok := env.member
			if ep.admin {
				tok = env.admin
			}
			for _, c := range decodetest.Cases(t) {
				if c.Status == 0 {
					continue
				}
				t.Run(c.Name, func(t *testing.T) {
					ct := c.ContentType
					if ct == "" {
						ct = "-"
					}
					w := env.do(t, request{method: ep.method, path: ep.path, token: tok, body: string(c.Body), contentType: ct})
					mustErrorBody(t, w, c.Status, c.Code)
					if got := w.Header().Get("WWW-Authenticate"); got != "" {
						t.Errorf("WWW-Authenticate = %q on a %d", got, w.Code)
					}
					if list, _ := env.store.ListBooks(ctx); len(list) != 3 {
						t.Errorf("%d books after a refused body, want the 3 seeded", len(list))
					}
					if b, _ := env.store.Book(ctx, 1); b != before {
						t.Errorf("book 1 = %+v after a refused body, want %+v", b, before)
					}
					if list, _ := env.store.ListArticles(ctx, "2"); len(list) != 0 {
						t.Errorf("a refused body stored %+v", list)
					}
				})
			}
		})
	}
}
