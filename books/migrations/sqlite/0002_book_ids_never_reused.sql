-- 0002_book_ids_never_reused: a deleted book's id is never handed out again.
--
-- Without AUTOINCREMENT, SQLite gives a new row the largest id plus one, so
-- deleting the newest book made its id the next book's: a client holding
-- the old id would PUT or DELETE a book it never saw. PostgreSQL's identity
-- column never reuses an id, and the Store contract now says so for both.
-- SQLite cannot add AUTOINCREMENT to a table, so the table is rebuilt; the
-- copied ids set sqlite_sequence to the largest one. (Ids of books deleted
-- before this migration, above the largest left, cannot be known, and may
-- be handed out once more.) Articles cannot be deleted, so their ids are
-- never reused as they are.

CREATE TABLE books_new (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	author   TEXT    NOT NULL,
	country  TEXT    NOT NULL DEFAULT '',
	language TEXT    NOT NULL DEFAULT '',
	pages    INTEGER NOT NULL,
	title    TEXT    NOT NULL,
	year     INTEGER NOT NULL
);

INSERT INTO books_new (id, author, country, language, pages, title, year)
	SELECT id, author, country, language, pages, title, year FROM books;

DROP TABLE books;

ALTER TABLE books_new RENAME TO books;
