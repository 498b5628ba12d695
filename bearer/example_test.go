package bearer_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/latchkey-dev/latchkey/bearer"
	"github.com/latchkey-dev/latchkey/token"
)

func Example() {
	signer, err := token.NewHMACSigner([]byte("an example secret of at least 32 bytes"))
	if err != nil {
		log.Fatal(err)
	}
	verifier := token.NewVerifier(token.StaticKeys(signer.VerificationKey()),
		token.WithIssuer("https://auth.example"), token.WithAudience("latchkey"))

	mux := http.NewServeMux()
	requireToken := bearer.Require(verifier)
	requireAdmin := bearer.RequireRole("admin")
	mux.Handle("GET /books", requireToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := bearer.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "books for %s", claims.Username)
	})))
	mux.Handle("POST /books", requireToken(requireAdmin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))))

	member, _ := signer.Sign(&token.Claims{
		Issuer: "https://auth.example", Subject: "7", Audience: []string{"latchkey"},
		ExpiresAt: time.Now().Add(time.Minute), Username: "anna", Role: "member",
	})
	send := func(method, auth string) {
		req := httptest.NewRequest(method, "/books", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Header().Get("WWW-Authenticate"))))
		fmt.Print(rec.Body.String())
		fmt.Println()
	}
	send("GET", "Bearer "+member)
	send("GET", "")
	send("GET", "Bearer not-a-token")
	send("POST", "Bearer "+member)
	// Output:
	// 200
	// books for anna
	// 401 Bearer realm="latchkey"
	// {"error":"invalid_token","error_description":"Authentication is required."}
	//
	// 401 Bearer realm="latchkey", error="invalid_token", error_description="The access token is malformed."
	// {"error":"invalid_token","error_description":"The access token is malformed."}
	//
	// 403 Bearer realm="latchkey", error="insufficient_scope", error_description="This action requires the admin role."
	// {"error":"insufficient_role","error_description":"This action requires the admin role."}
}

// A handler behind Require that refuses a verified token itself answers
// with the same challenge as the middleware.
func ExampleChallenge() {
	fmt.Println(bearer.Challenge("", ""))
	fmt.Println(bearer.Challenge("invalid_token", "The access token does not name a user."))
	// Output:
	// Bearer realm="latchkey"
	// Bearer realm="latchkey", error="invalid_token", error_description="The access token does not name a user."
}

func ExampleMuxErrors() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /books", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "[]") })
	h := bearer.MuxErrors(mux)
	for _, req := range []*http.Request{
		httptest.NewRequest("GET", "/nothing", nil),
		httptest.NewRequest("DELETE", "/books", nil),
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(strings.TrimSpace(fmt.Sprint(rec.Code, " ", rec.Header().Get("Allow"))))
		fmt.Print(rec.Body.String())
	}
	// Output:
	// 404
	// {"error":"not_found","error_description":"There is nothing at this path."}
	// 405 GET, HEAD
	// {"error":"method_not_allowed","error_description":"This path does not accept DELETE; the Allow header lists the methods it does."}
}
