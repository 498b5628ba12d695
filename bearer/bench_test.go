package bearer_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey-dev/latchkey/bearer"
)

// booksHandler stands for a real protected endpoint: it encodes the
// contract's GET /books answer. BenchmarkRequire / BenchmarkNoAuth is the
// cost ratio of protection for such an endpoint, once the token is cached.
func booksHandler() http.Handler {
	type book struct {
		ID       int    `json:"id"`
		Author   string `json:"author"`
		Country  string `json:"country"`
		Language string `json:"language"`
		Pages    int    `json:"pages"`
		Title    string `json:"title"`
		Year     int    `json:"year"`
	}
	books := []book{
		{1, "Chinua Achebe", "Nigeria", "English", 209, "Things Fall Apart", 1958},
		{2, "Hans Christian Andersen", "Denmark", "Danish", 784, "Fairy tales", 1836},
		{3, "Dante Alighieri", "Italy", "Italian", 928, "The Divine Comedy", 1315},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(books)
	})
}

func benchHandler(b *testing.B, h http.Handler, auth string) {
	req := httptest.NewRequest(http.MethodGet, "/books", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkNoAuth(b *testing.B) {
	benchHandler(b, booksHandler(), "")
}

func BenchmarkRequire(b *testing.B) {
	f := newFixture(b)
	benchHandler(b, bearer.Require(f.verifier)(booksHandler()), "Bearer "+f.token(b, nil))
}

func BenchmarkRequireRole(b *testing.B) {
	f := newFixture(b)
	h := bearer.Require(f.verifier)(bearer.RequireRole("member")(booksHandler()))
	benchHandler(b, h, "Bearer "+f.token(b, nil))
}

// The HTTP pair measures the same endpoint end to end through net/http over
// loopback with keep-alive, which is what a client of a protected endpoint
// sees; the in-process pair above is the worst case, with no transport cost
// to hide the middleware's.
func benchHTTP(b *testing.B, h http.Handler, auth string) {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	client := srv.Client()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/books", nil)
	if err != nil {
		b.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func BenchmarkNoAuthHTTP(b *testing.B) {
	benchHTTP(b, booksHandler(), "")
}

func BenchmarkRequireHTTP(b *testing.B) {
	f := newFixture(b)
	benchHTTP(b, bearer.Require(f.verifier)(booksHandler()), "Bearer "+f.token(b, nil))
}
