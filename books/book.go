package books

import "time"

// Book is a book of the shared catalogue.
type Book struct {
	ID       int64  `json:"id"`
	Author   string `json:"author"`
	Country  string `json:"country"`
	Language string `json:"language"`
	Pages    int    `json:"pages"`
	Title    string `json:"title"`
	Year     int    `json:"year"`
}

// Article is a note written by one user and visible only to them. The
// owner (the token's subject) is kept by the Store and never leaves it.
type Article struct {
	ID    int64  `json:"id"`
	Title string `json:"title"`
	Body  string `json:"body"`
	// Author is the username the caller's token carried when the article
	// was written.
	Author string `json:"author"`
	// CreatedAt is in UTC, to the second; JSON renders it as RFC 3339.
	CreatedAt time.Time `json:"createdAt"`
}
