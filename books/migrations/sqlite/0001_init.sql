-- 0001_init: books and articles. (PostgreSQL has its own migrations, in
-- ../postgres.)

CREATE TABLE books (
	id       INTEGER PRIMARY KEY,
	author   TEXT    NOT NULL,
	country  TEXT    NOT NULL DEFAULT '',
	language TEXT    NOT NULL DEFAULT '',
	pages    INTEGER NOT NULL,
	title    TEXT    NOT NULL,
	year     INTEGER NOT NULL
);

-- owner is the token subject (the user id at the auth server); author is
-- the username the token carried when the article was written.
CREATE TABLE articles (
	id         INTEGER PRIMARY KEY,
	owner      TEXT NOT NULL,
	title      TEXT NOT NULL,
	body       TEXT NOT NULL,
	author     TEXT NOT NULL,
	created_at TEXT NOT NULL
);

CREATE INDEX articles_owner ON articles (owner, id);
