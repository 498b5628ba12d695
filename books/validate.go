package books

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits from the contract. Lengths count characters (runes), not bytes.
const (
	maxTitleLen       = 200
	maxAuthorLen      = 200
	maxPlaceLen       = 200 // country and language
	minPages          = 1
	maxPages          = 100000
	maxArticleBodyLen = 100000
)

// bookRequest is the body of POST /books and PUT /books/{id}. Pointers tell
// an absent field from a zero one; decode has already refused nulls.
type bookRequest struct {
	Author   *string `json:"author"`
	Country  *string `json:"country"`
	Language *string `json:"language"`
	Pages    *int    `json:"pages"`
	Title    *string `json:"title"`
	Year     *int    `json:"year"`
}

// book validates the request and returns the book it describes. Title,
// author, pages and year are required (a PUT replaces the whole book, and
// there is no sensible default page count); country and language default
// to "".
func (req *bookRequest) book() (Book, error) {
	var b Book
	var err error
	if b.Title, err = requiredText("title", req.Title, maxTitleLen); err != nil {
		return Book{}, err
	}
	if b.Author, err = requiredText("author", req.Author, maxAuthorLen); err != nil {
		return Book{}, err
	}
	if b.Country, err = optionalText("country", req.Country, maxPlaceLen); err != nil {
		return Book{}, err
	}
	if b.Language, err = optionalText("language", req.Language, maxPlaceLen); err != nil {
		return Book{}, err
	}
	switch {
	case req.Pages == nil:
		return Book{}, badRequest(`Field "pages" is required.`)
	case *req.Pages < minPages || *req.Pages > maxPages:
		return Book{}, badRequest(fmt.Sprintf(`Field "pages" must be between %d and %d.`, minPages, maxPages))
	}
	b.Pages = *req.Pages
	if req.Year == nil {
		return Book{}, badRequest(`Field "year" is required (an integer; negative for years BC).`)
	}
	b.Year = *req.Year
	return b, nil
}

// articleRequest is the body of POST /articles.
type articleRequest struct {
	Title *string `json:"title"`
	Body  *string `json:"body"`
}

func (req *articleRequest) article() (Article, error) {
	var a Article
	var err error
	if a.Title, err = requiredText("title", req.Title, maxTitleLen); err != nil {
		return Article{}, err
	}
	if a.Body, err = requiredText("body", req.Body, maxArticleBodyLen); err != nil {
		return Article{}, err
	}
	return a, nil
}

// requiredText checks a required string field: present, not blank, at
// most max characters. The value is kept as sent.
func requiredText(name string, v *string, max int) (string, error) {
	if v == nil || strings.TrimSpace(*v) == "" {
		return "", badRequest(fmt.Sprintf("Field %q is required and must not be blank.", name))
	}
	return optionalText(name, v, max)
}

// optionalText checks an optional string field: at most max characters,
// and no NUL, which JSON can carry ("\u0000") but PostgreSQL cannot store;
// refused here, it is the client's 400 on every backend rather than a 500
// on one.
func optionalText(name string, v *string, max int) (string, error) {
	if v == nil {
		return "", nil
	}
	if utf8.RuneCountInString(*v) > max {
		return "", badRequest(fmt.Sprintf("Field %q must be at most %d characters.", name, max))
	}
	if strings.IndexByte(*v, 0) >= 0 {
		return "", badRequest(fmt.Sprintf("Field %q must not contain NUL characters.", name))
	}
	return *v, nil
}
