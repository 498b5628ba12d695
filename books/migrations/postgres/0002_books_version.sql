-- 0002_books_version: one counter that every change to books moves.
--
-- Each Store keeps GET /books's answer in memory and, per request, reads
-- this one row instead of the whole table: the same number means no book
-- was written since the answer was built, by this replica or any other
-- (docs/decisions.md, "GET /books from memory"). The triggers run inside
-- the writing transaction, so the change and the count commit together
-- and become visible together. The function names the counter in the
-- schema of the table that fired it, so that a writer whose search_path
-- differs still moves the right one. A migration that rebuilds the books
-- table must create the triggers again.

CREATE TABLE books_version (
	id int    PRIMARY KEY CHECK (id = 1),
	n  bigint NOT NULL
);

INSERT INTO books_version (id, n) VALUES (1, 0);

CREATE FUNCTION books_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('UPDATE %I.books_version SET n = n + 1 WHERE id = 1', TG_TABLE_SCHEMA);
	RETURN NULL;
END
$$;

-- Per row, so that an UPDATE or DELETE that matched nothing (a 404) does
-- not empty every replica's copy; TRUNCATE has no rows, hence its own.
CREATE TRIGGER books_version_rows AFTER INSERT OR UPDATE OR DELETE ON books
	FOR EACH ROW EXECUTE FUNCTION books_version_bump();

CREATE TRIGGER books_version_truncate AFTER TRUNCATE ON books
	FOR EACH STATEMENT EXECUTE FUNCTION books_version_bump();
