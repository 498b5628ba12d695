package books

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchkey-dev/latchkey/token"
)

const (
	testIssuer   = "http://localhost:3000"
	testAudience = "latchkey"
)

// testEnv is a books server on a seeded in-memory store, with a signer
// whose key its verifier trusts, and tokens for the tutorials' users.
type testEnv struct {
	handler http.Handler
	store   *SQLiteStore
	signer  *token.Signer
	admin   string // john, role admin
	member  string // anna, role member
	other   string // bob, role member
}

type envOption func(*Config)

// newTestStore opens a fresh in-memory store, closed when the test ends.
func newTestStore(tb testing.TB) *SQLiteStore {
	tb.Helper()
	s, err := OpenSQLite(context.Background(), ":memory:")
	if err != nil {
		tb.Fatalf("OpenSQLite: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func newTestEnv(tb testing.TB, opts ...envOption) *testEnv {
	tb.Helper()
	store := newTestStore(tb)
	if err := store.SeedDemo(context.Background()); err != nil {
		tb.Fatalf("SeedDemo: %v", err)
	}
	key, err := token.GenerateKey("ES256")
	if err != nil {
		tb.Fatalf("GenerateKey: %v", err)
	}
	signer, err := token.NewSigner("ES256", "test-key", key)
	if err != nil {
		tb.Fatalf("NewSigner: %v", err)
	}
	verifier := token.NewVerifier(token.StaticKeys(signer.VerificationKey()),
		token.WithIssuer(testIssuer), token.WithAudience(testAudience))
	cfg := Config{Store: store, Verifier: verifier}
	for _, o := range opts {
		o(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	env := &testEnv{handler: h, store: store, signer: signer}
	env.admin = mustToken(tb, signer, "1", "john", "admin")
	env.member = mustToken(tb, signer, "2", "anna", "member")
	env.other = mustToken(tb, signer, "3", "bob", "member")
	return env
}

// mustToken signs an access token as the auth server would issue it.
func mustToken(tb testing.TB, s *token.Signer, sub, username, role string) string {
	tb.Helper()
	now := time.Now()
	raw, err := s.Sign(&token.Claims{
		Issuer:    testIssuer,
		Subject:   sub,
		Audience:  []string{testAudience},
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(15 * time.Minute),
		ID:        "jti-" + sub + "-" + role,
		SessionID: "sid-" + sub,
		Username:  username,
		Role:      role,
	})
	if err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return raw
}

// request describes one call; zero fields are left out.
type request struct {
	method      string
	path        string
	token       string
	body        string
	contentType string // "-" sends no Content-Type; "" sends application/json with a body
	header      map[string]string
}

func (e *testEnv) do(tb testing.TB, req request) *httptest.ResponseRecorder {
	tb.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	r := httptest.NewRequest(req.method, req.path, body)
	switch {
	case req.contentType == "-":
	case req.contentType != "":
		r.Header.Set("Content-Type", req.contentType)
	case req.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	if req.token != "" {
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// errorBody is the contract's error response.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// mustErrorBody checks that w is a JSON error with the given status and code.
func mustErrorBody(tb testing.TB, w *httptest.ResponseRecorder, status int, code string) errorBody {
	tb.Helper()
	if w.Code != status {
		tb.Fatalf("status = %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e errorBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		tb.Fatalf("error body: %v", err)
	}
	if e.Error != code || e.Description == "" {
		tb.Errorf("error body = %+v, want code %q with a description", e, code)
	}
	return e
}

func mustDecode[T any](tb testing.TB, w *httptest.ResponseRecorder) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		tb.Fatalf("decode %s: %v", w.Body, err)
	}
	return v
}
