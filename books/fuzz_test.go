package books

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/latchkey-dev/latchkey/internal/decodetest"
)

// maxFuzzSeed leaves the shared table's 1 MiB bodies out of the fuzz
// seeds: the table tests them, and mutating them would only slow the fuzzer.
const maxFuzzSeed = 4 << 10

// FuzzDecodeBook feeds arbitrary bodies to the JSON decoding and validation
// of POST /books. Whatever the input, the answer is a book that obeys the
// contract or a 400 — never a panic. Seeds: the shared table of bodies,
// and book-shaped ones here and in testdata/fuzz/FuzzDecodeBook, which
// reach validation.
func FuzzDecodeBook(f *testing.F) {
	for _, c := range decodetest.Cases(f) {
		if len(c.Body) <= maxFuzzSeed {
			f.Add(c.Body)
		}
	}
	f.Add([]byte(validBook))
	f.Add([]byte(`{"title":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req bookRequest
		err := decodeBytes(body, &req)
		if err == nil {
			var b Book
			b, err = req.book()
			if err == nil {
				checkBook(t, b)
				return
			}
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.code != "invalid_request" || ae.description == "" {
			t.Fatalf("error %v, want a 400 invalid_request", err)
		}
		var areq articleRequest
		if err := decodeBytes(body, &areq); err == nil {
			if a, err := areq.article(); err == nil && (strings.TrimSpace(a.Title) == "" || utf8.RuneCountInString(a.Body) > maxArticleBodyLen) {
				t.Fatalf("invalid article accepted: %+v", a)
			}
		}
	})
}

// FuzzCreateBook drives the same bodies through the whole handler, token
// check and store included: only 201 or 400 may come back.
func FuzzCreateBook(f *testing.F) {
	for _, c := range decodetest.Cases(f) {
		if len(c.Body) <= maxFuzzSeed {
			f.Add(c.Body, c.ContentType)
		}
	}
	f.Add([]byte(validBook), "application/json")
	f.Add([]byte(`{"title":"T","author":"A","pages":1,"year":0}`), "")
	f.Add([]byte(`[]`), "application/json; charset=UTF-8")
	env := newTestEnv(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		ct := contentType
		if ct == "" {
			ct = "-"
		}
		w := env.do(t, request{method: "POST", path: "/books", token: env.admin, body: string(body), contentType: ct})
		switch w.Code {
		case http.StatusCreated:
			checkBook(t, mustDecode[Book](t, w))
		case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q (%q): %s", w.Code, body, contentType, w.Body)
		}
	})
}

func checkBook(t *testing.T, b Book) {
	t.Helper()
	switch {
	case strings.TrimSpace(b.Title) == "", utf8.RuneCountInString(b.Title) > maxTitleLen,
		strings.TrimSpace(b.Author) == "", utf8.RuneCountInString(b.Author) > maxAuthorLen,
		utf8.RuneCountInString(b.Country) > maxPlaceLen, utf8.RuneCountInString(b.Language) > maxPlaceLen,
		b.Pages < minPages, b.Pages > maxPages:
		t.Fatalf("invalid book accepted: %+v", b)
	}
}
