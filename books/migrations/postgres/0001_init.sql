-- 0001_init: books and articles, as SQLite's 0001 and 0002 leave them.
--
-- Identity columns never hand out an id twice, deleted or not. pages and
-- year are bigint, so that any int64 a caller stores comes back, as with
-- SQLite's INTEGER. created_at is a timestamptz (SQLite keeps RFC 3339
-- text); both round-trip whole seconds in UTC.
--
-- The tables may share a schema with the auth server's (users, sessions,
-- refresh_tokens, signing_keys); the migrations are recorded in
-- books_schema_migrations for that reason.

CREATE TABLE books (
	id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	author   text   NOT NULL,
	country  text   NOT NULL DEFAULT '',
	language text   NOT NULL DEFAULT '',
	pages    bigint NOT NULL,
	title    text   NOT NULL,
	year     bigint NOT NULL
);

-- owner is the token subject (the user id at the auth server); author is
-- the username the token carried when the article was written.
CREATE TABLE articles (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner      text        NOT NULL,
	title      text        NOT NULL,
	body       text        NOT NULL,
	author     text        NOT NULL,
	created_at timestamptz NOT NULL
);

CREATE INDEX articles_owner ON articles (owner, id);
