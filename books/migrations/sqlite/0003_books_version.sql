-- 0003_books_version: one counter that every change to books moves.
--
-- Each Store keeps GET /books's answer in memory and, per request, reads
-- this one row instead of the whole table: the same number means no book
-- was written since the answer was built, by this process or any other
-- (docs/decisions.md, "GET /books from memory"). The triggers run inside
-- the writing statement, so the change and the count commit together.
-- A migration that rebuilds the books table must create them again.

CREATE TABLE books_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	n  INTEGER NOT NULL
);

INSERT INTO books_version (id, n) VALUES (1, 0);

CREATE TRIGGER books_version_insert AFTER INSERT ON books
BEGIN
	UPDATE books_version SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER books_version_update AFTER UPDATE ON books
BEGIN
	UPDATE books_version SET n = n + 1 WHERE id = 1;
END;

CREATE TRIGGER books_version_delete AFTER DELETE ON books
BEGIN
	UPDATE books_version SET n = n + 1 WHERE id = 1;
END;
