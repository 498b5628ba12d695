package books

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

const validBook = `{"author":"Ngũgĩ wa Thiong'o","country":"Kenya","language":"Gĩkũyũ","pages":300,"title":"Devil on the Cross","year":1980}`

// bookWith returns a valid book's fields with some replaced or removed (a nil
// value removes the field), as JSON.
func bookWith(fields map[string]any) string {
	base := map[string]any{"author": "A", "country": "C", "language": "L", "pages": 100, "title": "T", "year": 1900}
	for k, v := range fields {
		if v == nil {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	for _, k := range []string{"author", "country", "language", "pages", "title", "year", "id", "Title", "isbn"} {
		v, ok := base[k]
		if !ok {
			continue
		}
		if !first {
			b.WriteString(",")
		}
		first = false
		b.WriteString(`"` + k + `":`)
		switch v := v.(type) {
		case raw:
			b.WriteString(string(v))
		case string:
			b.WriteString(`"` + v + `"`)
		case int:
			b.WriteString(strconv.Itoa(v))
		}
	}
	b.WriteString("}")
	return b.String()
}

// raw is JSON written as is by bookWith.
type raw string

// TestBooksContract walks the contract's books rows: success and each
// failure it names.
func TestBooksContract(t *testing.T) {
	long := strings.Repeat("é", 201)
	max := strings.Repeat("é", 200) // 400 bytes, 200 characters: allowed

	tests := []struct {
		name   string
		req    request
		status int
		code   string // error code when status >= 400
	}{
		// GET /books
		{name: "list without token", req: request{method: "GET", path: "/books"}, status: 401, code: "invalid_token"},
		{name: "list with garbage token", req: request{method: "GET", path: "/books", token: "not.a.jwt"}, status: 401, code: "invalid_token"},
		{name: "list as member", req: request{method: "GET", path: "/books", token: "member"}, status: 200},
		{name: "list as admin", req: request{method: "GET", path: "/books", token: "admin"}, status: 200},

		// GET /books/{id}
		{name: "get as member", req: request{method: "GET", path: "/books/1", token: "member"}, status: 200},
		{name: "get without token", req: request{method: "GET", path: "/books/1"}, status: 401, code: "invalid_token"},
		{name: "get missing id", req: request{method: "GET", path: "/books/999", token: "member"}, status: 404, code: "not_found"},
		{name: "get non-numeric id", req: request{method: "GET", path: "/books/abc", token: "member"}, status: 404, code: "not_found"},
		{name: "get zero id", req: request{method: "GET", path: "/books/0", token: "member"}, status: 404, code: "not_found"},
		{name: "get negative id", req: request{method: "GET", path: "/books/-1", token: "member"}, status: 404, code: "not_found"},
		{name: "get plus-signed id", req: request{method: "GET", path: "/books/+1", token: "member"}, status: 404, code: "not_found"},
		{name: "get zero-padded id", req: request{method: "GET", path: "/books/01", token: "member"}, status: 404, code: "not_found"},
		{name: "get id beyond int64", req: request{method: "GET", path: "/books/99999999999999999999", token: "member"}, status: 404, code: "not_found"},

		// POST /books
		{name: "create as admin", req: request{method: "POST", path: "/books", token: "admin", body: validBook}, status: 201},
		{name: "create without token", req: request{method: "POST", path: "/books", body: validBook}, status: 401, code: "invalid_token"},
		{name: "create as member", req: request{method: "POST", path: "/books", token: "member", body: validBook}, status: 403, code: "insufficient_role"},
		{name: "create with 200-character title and author", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"title": max, "author": max, "country": max, "language": max})}, status: 201},
		{name: "create with negative year", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"year": -800})}, status: 201},
		{name: "create with page bounds", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": 100000})}, status: 201},
		{name: "create without country and language", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"country": nil, "language": nil})}, status: 201},
		{name: "create with charset parameter", req: request{method: "POST", path: "/books", token: "admin", body: validBook, contentType: "application/json; charset=utf-8"}, status: 201},
		{name: "create without Content-Type", req: request{method: "POST", path: "/books", token: "admin", body: validBook, contentType: "-"}, status: 201},

		// Bodies that break the common rules (JSON syntax, shape, size,
		// Content-Type) are the shared table's, which
		// TestHostileBodiesOverHTTP sends to every endpoint with a body.
		{name: "title missing", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"title": nil})}, status: 400, code: "invalid_request"},
		{name: "title blank", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"title": "   "})}, status: 400, code: "invalid_request"},
		{name: "title 201 characters", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"title": long})}, status: 400, code: "invalid_request"},
		{name: "title null", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"title": raw("null")})}, status: 400, code: "invalid_request"},
		{name: "title a number", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"title": raw("5")})}, status: 400, code: "invalid_request"},
		{name: "author missing", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"author": nil})}, status: 400, code: "invalid_request"},
		{name: "author empty", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"author": ""})}, status: 400, code: "invalid_request"},
		{name: "author 201 characters", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"author": long})}, status: 400, code: "invalid_request"},
		{name: "country 201 characters", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"country": long})}, status: 400, code: "invalid_request"},
		{name: "language 201 characters", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"language": long})}, status: 400, code: "invalid_request"},
		{name: "country null", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"country": raw("null")})}, status: 400, code: "invalid_request"},
		{name: "pages missing", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": nil})}, status: 400, code: "invalid_request"},
		{name: "pages zero", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": 0})}, status: 400, code: "invalid_request"},
		{name: "pages negative", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": -3})}, status: 400, code: "invalid_request"},
		{name: "pages 100001", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": 100001})}, status: 400, code: "invalid_request"},
		{name: "pages a string", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": "209"})}, status: 400, code: "invalid_request"},
		{name: "pages a fraction", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": raw("20.5")})}, status: 400, code: "invalid_request"},
		{name: "pages beyond int64", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"pages": raw("1e400")})}, status: 400, code: "invalid_request"},
		{name: "year missing", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"year": nil})}, status: 400, code: "invalid_request"},
		{name: "year a string", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"year": "1958"})}, status: 400, code: "invalid_request"},
		{name: "year a fraction", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"year": raw("1958.5")})}, status: 400, code: "invalid_request"},
		{name: "year null", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"year": raw("null")})}, status: 400, code: "invalid_request"},
		{name: "id in body", req: request{method: "POST", path: "/books", token: "admin", body: bookWith(map[string]any{"id": 5})}, status: 400, code: "invalid_request"},

		// PUT /books/{id}
		{name: "replace as admin", req: request{method: "PUT", path: "/books/1", token: "admin", body: validBook}, status: 200},
		{name: "replace without token", req: request{method: "PUT", path: "/books/1", body: validBook}, status: 401, code: "invalid_token"},
		{name: "replace as member", req: request{method: "PUT", path: "/books/1", token: "member", body: validBook}, status: 403, code: "insufficient_role"},
		{name: "replace missing book", req: request{method: "PUT", path: "/books/999", token: "admin", body: validBook}, status: 404, code: "not_found"},
		{name: "replace at non-numeric id", req: request{method: "PUT", path: "/books/abc", token: "admin", body: validBook}, status: 404, code: "not_found"},
		{name: "replace with invalid book", req: request{method: "PUT", path: "/books/1", token: "admin", body: bookWith(map[string]any{"pages": 0})}, status: 400, code: "invalid_request"},
		{name: "replace with partial book", req: request{method: "PUT", path: "/books/1", token: "admin", body: `{"title":"Only"}`}, status: 400, code: "invalid_request"},

		// DELETE /books/{id}
		{name: "delete as admin", req: request{method: "DELETE", path: "/books/2", token: "admin"}, status: 204},
		{name: "delete without token", req: request{method: "DELETE", path: "/books/3"}, status: 401, code: "invalid_token"},
		{name: "delete as member", req: request{method: "DELETE", path: "/books/3", token: "member"}, status: 403, code: "insufficient_role"},
		{name: "delete missing book", req: request{method: "DELETE", path: "/books/999", token: "admin"}, status: 404, code: "not_found"},
		{name: "delete at non-numeric id", req: request{method: "DELETE", path: "/books/x", token: "admin"}, status: 404, code: "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			switch tc.req.token {
			case "admin":
				tc.req.token = env.admin
			case "member":
				tc.req.token = env.member
			}
			w := env.do(t, tc.req)
			if tc.status >= 400 {
				mustErrorBody(t, w, tc.status, tc.code)
				switch got := w.Header().Get("WWW-Authenticate"); {
				case tc.status == 401 && !strings.HasPrefix(got, `Bearer realm="latchkey"`):
					t.Errorf("WWW-Authenticate = %q on a 401", got)
				case tc.status != 401 && tc.status != 403 && got != "":
					t.Errorf("WWW-Authenticate = %q on a %d", got, tc.status)
				}
				if tc.req.method != "GET" {
					// Failures never write: the store still has the seed.
					if list, _ := env.store.ListBooks(context.Background()); len(list) != 3 || list[0].Title != "Things Fall Apart" {
						t.Errorf("store changed by a failed request: %+v", list)
					}
				}
				return
			}
			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tc.status, w.Body)
			}
		})
	}
}

func TestUnauthorizedHeaders(t *testing.T) {
	env := newTestEnv(t)
	// adminToken signs an admin token with signer, changed by edit.
	adminToken := func(signer *token.Signer, edit func(*token.Claims)) string {
		now := time.Now()
		c := &token.Claims{
			Issuer: testIssuer, Subject: "1", Audience: []string{testAudience},
			IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(15 * time.Minute),
			ID: "j", SessionID: "s", Username: "john", Role: "admin",
		}
		edit(c)
		raw, err := signer.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	key, err := token.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := token.NewSigner("ES256", "test-key", key) // same kid, other key
	if err != nil {
		t.Fatal(err)
	}
	const invalid = `Bearer realm="latchkey", error="invalid_token"`
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{name: "no token: no error attribute", token: "", want: `Bearer realm="latchkey"`},
		{name: "garbage token", token: "abc", want: invalid},
		{name: "expired", token: adminToken(env.signer, func(c *token.Claims) {
			c.IssuedAt, c.NotBefore, c.ExpiresAt = c.IssuedAt.Add(-time.Hour), c.NotBefore.Add(-time.Hour), c.ExpiresAt.Add(-time.Hour)
		}), want: invalid},
		{name: "not yet valid", token: adminToken(env.signer, func(c *token.Claims) { c.NotBefore = c.NotBefore.Add(time.Hour) }), want: invalid},
		{name: "other audience", token: adminToken(env.signer, func(c *token.Claims) { c.Audience = []string{"billing"} }), want: invalid},
		{name: "other issuer", token: adminToken(env.signer, func(c *token.Claims) { c.Issuer = "https://evil.example" }), want: invalid},
		{name: "signed by another key", token: adminToken(stranger, func(*token.Claims) {}), want: invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := env.do(t, request{method: "DELETE", path: "/books/1", token: tc.token})
			mustErrorBody(t, w, 401, "invalid_token")
			got := w.Header().Get("WWW-Authenticate")
			if tc.token == "" && got != tc.want || !strings.HasPrefix(got, tc.want) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := env.store.Book(context.Background(), 1); err != nil {
		t.Errorf("book 1 gone after refused deletes: %v", err)
	}
}

func TestArticlesNeedSubject(t *testing.T) {
	// token.Signer will not issue such a token; a Verifier of another make
	// might pass one through, and the handler must not file it under "".
	env := newTestEnv(t, func(c *Config) {
		c.Verifier = fixedVerifier{&token.Claims{Username: "ghost", Role: "member"}}
	})
	const anonymous = "any.token.value"
	for _, req := range []request{
		{method: "GET", path: "/articles", token: anonymous},
		{method: "POST", path: "/articles", token: anonymous, body: `{"title":"t","body":"b"}`},
	} {
		w := env.do(t, req)
		mustErrorBody(t, w, 401, "invalid_token")
		if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Bearer realm="latchkey", error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate = %q", req.method, got)
		}
	}
	if list, _ := env.store.ListArticles(context.Background(), ""); len(list) != 0 {
		t.Errorf("stored for an empty subject: %+v", list)
	}
}

func TestBookLifecycle(t *testing.T) {
	env := newTestEnv(t)

	w := env.do(t, request{method: "GET", path: "/books", token: env.member})
	list := mustDecode[[]Book](t, w)
	if len(list) != 3 || list[0].Title != "Things Fall Apart" || list[1].Author != "Hans Christian Andersen" || list[2].Pages != 928 {
		t.Fatalf("seeded list = %+v", list)
	}
	if !strings.Contains(w.Body.String(), `{"id":1,"author":"Chinua Achebe","country":"Nigeria","language":"English","pages":209,"title":"Things Fall Apart","year":1958}`) {
		t.Errorf("wire form of book 1 differs from the contract: %s", w.Body)
	}

	w = env.do(t, request{method: "POST", path: "/books", token: env.admin, body: validBook})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	created := mustDecode[Book](t, w)
	want := Book{ID: 4, Author: "Ngũgĩ wa Thiong'o", Country: "Kenya", Language: "Gĩkũyũ", Pages: 300, Title: "Devil on the Cross", Year: 1980}
	if created != want {
		t.Errorf("created = %+v, want %+v", created, want)
	}
	if loc := w.Header().Get("Location"); loc != "/books/4" {
		t.Errorf("Location = %q, want /books/4", loc)
	}

	w = env.do(t, request{method: "GET", path: "/books/4", token: env.member})
	if got := mustDecode[Book](t, w); got != want {
		t.Errorf("get = %+v, want %+v", got, want)
	}

	w = env.do(t, request{method: "PUT", path: "/books/4", token: env.admin,
		body: `{"author":"A","pages":1,"title":"T","year":-5}`})
	replaced := Book{ID: 4, Author: "A", Pages: 1, Title: "T", Year: -5}
	if w.Code != 200 {
		t.Fatalf("put: %d %s", w.Code, w.Body)
	}
	if got := mustDecode[Book](t, w); got != replaced {
		t.Errorf("put = %+v, want %+v (a PUT replaces the whole book)", got, replaced)
	}
	if got, _ := env.store.Book(context.Background(), 4); got != replaced {
		t.Errorf("stored = %+v, want %+v", got, replaced)
	}

	w = env.do(t, request{method: "DELETE", path: "/books/4", token: env.admin})
	if w.Code != http.StatusNoContent || w.Body.Len() != 0 {
		t.Errorf("delete: %d %q", w.Code, w.Body)
	}
	mustErrorBody(t, env.do(t, request{method: "GET", path: "/books/4", token: env.member}), 404, "not_found")
	mustErrorBody(t, env.do(t, request{method: "DELETE", path: "/books/4", token: env.admin}), 404, "not_found")
}

func TestValidationDescriptions(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name string
		body string
		want string // part of error_description
	}{
		{name: "wrong type names the field", body: bookWith(map[string]any{"pages": "x"}), want: `"pages" must be an integer`},
		{name: "null names the field", body: bookWith(map[string]any{"title": raw("null")}), want: `"title" must not be null`},
		{name: "unknown field is named", body: bookWith(map[string]any{"isbn": "x"}), want: `Unknown field "isbn"`},
		{name: "range is given", body: bookWith(map[string]any{"pages": 0}), want: "between 1 and 100000"},
		{name: "length is given", body: bookWith(map[string]any{"title": strings.Repeat("x", 201)}), want: "at most 200 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := env.do(t, request{method: "POST", path: "/books", token: env.admin, body: tc.body})
			e := mustErrorBody(t, w, 400, "invalid_request")
			if !strings.Contains(e.Description, tc.want) {
				t.Errorf("description %q does not contain %q", e.Description, tc.want)
			}
		})
	}
}

func TestArticlesIsolation(t *testing.T) {
	env := newTestEnv(t)

	w := env.do(t, request{method: "GET", path: "/articles", token: env.member})
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != "[]" {
		t.Fatalf("empty list: %d %s", w.Code, w.Body)
	}

	w = env.do(t, request{method: "POST", path: "/articles", token: env.member, body: `{"title":"Anna's","body":"private"}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	annas := mustDecode[Article](t, w)
	if annas.ID == 0 || annas.Author != "anna" || annas.Title != "Anna's" || annas.Body != "private" {
		t.Errorf("created = %+v", annas)
	}
	if d := time.Since(annas.CreatedAt); d < -time.Second || d > time.Minute || annas.CreatedAt.Location() != time.UTC {
		t.Errorf("createdAt = %v, want about now in UTC", annas.CreatedAt)
	}
	var wire map[string]any
	wire = mustDecode[map[string]any](t, w)
	if s, _ := wire["createdAt"].(string); !strings.HasSuffix(s, "Z") {
		t.Errorf("createdAt on the wire = %v, want RFC 3339 UTC", wire["createdAt"])
	}

	w = env.do(t, request{method: "POST", path: "/articles", token: env.other, body: `{"title":"Bob's","body":"mine"}`})
	if w.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}

	for _, c := range []struct {
		who, token, title, author string
	}{{"anna", env.member, "Anna's", "anna"}, {"bob", env.other, "Bob's", "bob"}} {
		list := mustDecode[[]Article](t, env.do(t, request{method: "GET", path: "/articles", token: c.token}))
		if len(list) != 1 || list[0].Title != c.title || list[0].Author != c.author {
			t.Errorf("%s sees %+v, want only their own article", c.who, list)
		}
	}
	// The same username under another subject is someone else.
	impostor := mustToken(t, env.signer, "99", "anna", "member")
	if list := mustDecode[[]Article](t, env.do(t, request{method: "GET", path: "/articles", token: impostor})); len(list) != 0 {
		t.Errorf("another subject named anna sees %+v", list)
	}
}

func TestArticlesFailures(t *testing.T) {
	tests := []struct {
		name   string
		req    request
		status int
		code   string
	}{
		{name: "list without token", req: request{method: "GET", path: "/articles"}, status: 401, code: "invalid_token"},
		{name: "create without token", req: request{method: "POST", path: "/articles", body: `{"title":"t","body":"b"}`}, status: 401, code: "invalid_token"},
		{name: "title missing", req: request{method: "POST", path: "/articles", token: "member", body: `{"body":"b"}`}, status: 400, code: "invalid_request"},
		{name: "body missing", req: request{method: "POST", path: "/articles", token: "member", body: `{"title":"t"}`}, status: 400, code: "invalid_request"},
		{name: "body blank", req: request{method: "POST", path: "/articles", token: "member", body: `{"title":"t","body":"\n"}`}, status: 400, code: "invalid_request"},
		{name: "title 201 characters", req: request{method: "POST", path: "/articles", token: "member", body: `{"title":"` + strings.Repeat("ß", 201) + `","body":"b"}`}, status: 400, code: "invalid_request"},
		{name: "body 100001 characters", req: request{method: "POST", path: "/articles", token: "member", body: `{"title":"t","body":"` + strings.Repeat("ß", 100001) + `"}`}, status: 400, code: "invalid_request"},
		{name: "body null", req: request{method: "POST", path: "/articles", token: "member", body: `{"title":"t","body":null}`}, status: 400, code: "invalid_request"},
		{name: "unknown author field", req: request{method: "POST", path: "/articles", token: "member", body: `{"title":"t","body":"b","author":"john"}`}, status: 400, code: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEnv(t)
			if tc.req.token == "member" {
				tc.req.token = env.member
			}
			mustErrorBody(t, env.do(t, tc.req), tc.status, tc.code)
			if list, _ := env.store.ListArticles(context.Background(), "2"); len(list) != 0 {
				t.Errorf("failed request stored %+v", list)
			}
		})
	}
	t.Run("100000 characters is allowed", func(t *testing.T) {
		env := newTestEnv(t)
		w := env.do(t, request{method: "POST", path: "/articles", token: env.member,
			body: `{"title":"t","body":"` + strings.Repeat("ß", 100000) + `"}`})
		if w.Code != http.StatusCreated {
			t.Errorf("status %d: %s", w.Code, w.Body)
		}
	})
}

func TestMuxErrorsAreJSON(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name   string
		req    request
		status int
		code   string
		allow  string
	}{
		{name: "unknown path", req: request{method: "GET", path: "/nope"}, status: 404, code: "not_found"},
		{name: "unknown path with token", req: request{method: "GET", path: "/users", token: "x"}, status: 404, code: "not_found"},
		{name: "root", req: request{method: "GET", path: "/"}, status: 404, code: "not_found"},
		{name: "trailing slash", req: request{method: "GET", path: "/books/", token: "x"}, status: 404, code: "not_found"},
		{name: "too deep", req: request{method: "GET", path: "/books/1/pages"}, status: 404, code: "not_found"},
		{name: "PATCH a book", req: request{method: "PATCH", path: "/books/1"}, status: 405, code: "method_not_allowed", allow: "DELETE, GET, HEAD, PUT"},
		{name: "DELETE the collection", req: request{method: "DELETE", path: "/books"}, status: 405, code: "method_not_allowed", allow: "GET, HEAD, POST"},
		{name: "PUT articles", req: request{method: "PUT", path: "/articles"}, status: 405, code: "method_not_allowed", allow: "GET, HEAD, POST"},
		{name: "POST healthz", req: request{method: "POST", path: "/healthz"}, status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := env.do(t, tc.req)
			mustErrorBody(t, w, tc.status, tc.code)
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var readyErr error
	env := newTestEnv(t, func(c *Config) {
		c.Ready = func(context.Context) error { return readyErr }
	})
	for _, path := range []string{"/healthz", "/readyz"} {
		w := env.do(t, request{method: "GET", path: path})
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
			t.Errorf("%s = %d %s", path, w.Code, w.Body)
		}
	}

	readyErr = errors.New("jwks unreachable")
	if w := env.do(t, request{method: "GET", path: "/readyz"}); w.Code != 503 {
		t.Errorf("readyz with key source down = %d, want 503", w.Code)
	}
	readyErr = nil
	env.store.Close()
	if w := env.do(t, request{method: "GET", path: "/readyz"}); w.Code != 503 {
		t.Errorf("readyz with database closed = %d, want 503", w.Code)
	}
	if w := env.do(t, request{method: "GET", path: "/healthz"}); w.Code != 200 {
		t.Errorf("healthz with database closed = %d, want 200", w.Code)
	}
}

func TestServerErrorHidesCause(t *testing.T) {
	var logs bytes.Buffer
	env := newTestEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	env.store.Close()
	w := env.do(t, request{method: "GET", path: "/books", token: env.member})
	e := mustErrorBody(t, w, 500, "server_error")
	if strings.Contains(strings.ToLower(e.Description), "sql") || strings.Contains(e.Description, "closed") {
		t.Errorf("500 description leaks internals: %q", e.Description)
	}
	if !strings.Contains(logs.String(), "database is closed") {
		t.Errorf("cause not logged: %q", logs.String())
	}
	if strings.Contains(logs.String(), env.member) {
		t.Error("the log contains the access token")
	}
}

func TestCORS(t *testing.T) {
	const allowed = "https://app.example.com"
	env := newTestEnv(t, func(c *Config) { c.CORSOrigins = []string{allowed + "/", "https://other.example.com"} })
	preflight := map[string]string{
		"Origin":                         allowed,
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "authorization, content-type",
	}

	t.Run("allowed origin", func(t *testing.T) {
		w := env.do(t, request{method: "GET", path: "/books", token: env.member, header: map[string]string{"Origin": allowed}})
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, allowed)
		}
		if !hasVary(w.Header(), "Origin") {
			t.Errorf("Vary = %q, want Origin", w.Header().Values("Vary"))
		}
		if got := w.Header().Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("Access-Control-Allow-Credentials = %q, want none", got)
		}
	})
	t.Run("allowed origin on an error", func(t *testing.T) {
		w := env.do(t, request{method: "GET", path: "/books", header: map[string]string{"Origin": allowed}})
		mustErrorBody(t, w, 401, "invalid_token")
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("a browser cannot read the 401: Access-Control-Allow-Origin = %q", got)
		}
	})
	t.Run("preflight from allowed origin", func(t *testing.T) {
		w := env.do(t, request{method: "OPTIONS", path: "/books", header: preflight})
		if w.Code != http.StatusNoContent {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		h := w.Header()
		for name, want := range map[string]string{
			"Access-Control-Allow-Origin":  allowed,
			"Access-Control-Allow-Methods": "GET, POST, PUT, DELETE",
			"Access-Control-Allow-Headers": "Authorization, Content-Type",
			"Access-Control-Max-Age":       "600",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if !hasVary(h, "Origin") {
			t.Errorf("Vary = %q", h.Values("Vary"))
		}
	})
	for _, origin := range []string{"https://evil.example.com", "null", "https://app.example.com.evil.com", "http://app.example.com"} {
		t.Run("denied "+origin, func(t *testing.T) {
			w := env.do(t, request{method: "GET", path: "/books", token: env.member, header: map[string]string{"Origin": origin}})
			if w.Code != 200 {
				t.Errorf("status %d; the request itself is still served", w.Code)
			}
			mustNoCORS(t, w.Header())
			p := map[string]string{}
			for k, v := range preflight {
				p[k] = v
			}
			p["Origin"] = origin
			w = env.do(t, request{method: "OPTIONS", path: "/books", header: p})
			mustNoCORS(t, w.Header())
			mustErrorBody(t, w, 405, "method_not_allowed")
		})
	}
	t.Run("no origins configured", func(t *testing.T) {
		env := newTestEnv(t)
		w := env.do(t, request{method: "OPTIONS", path: "/books", header: preflight})
		mustNoCORS(t, w.Header())
	})
	t.Run("wildcard", func(t *testing.T) {
		env := newTestEnv(t, func(c *Config) { c.CORSOrigins = []string{"*"} })
		w := env.do(t, request{method: "GET", path: "/books", token: env.member, header: map[string]string{"Origin": "https://any.example"}})
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "https://any.example" {
			t.Errorf("Access-Control-Allow-Origin = %q", got)
		}
	})
}

func hasVary(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

func mustNoCORS(tb testing.TB, h http.Header) {
	tb.Helper()
	for name := range h {
		if strings.HasPrefix(name, "Access-Control-") {
			tb.Errorf("CORS header %s: %q on a refused origin", name, h.Get(name))
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	store := newTestStore(t)
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no store", cfg: Config{Verifier: nopVerifier{}}},
		{name: "no verifier", cfg: Config{Store: store}},
		{name: "null origin", cfg: Config{Store: store, Verifier: nopVerifier{}, CORSOrigins: []string{"null"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

// nopVerifier accepts nothing; New only needs a non-nil Verifier.
type nopVerifier struct{}

func (nopVerifier) Verify(context.Context, string) (*token.Claims, error) {
	return nil, errors.New("nop")
}

// fixedVerifier accepts every token as having its claims.
type fixedVerifier struct{ claims *token.Claims }

func (v fixedVerifier) Verify(context.Context, string) (*token.Claims, error) {
	c := *v.claims
	return &c, nil
}
