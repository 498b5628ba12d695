-- Security events (the contract's Audit log). Ids are UUIDv7, so id order
-- is time order and the list's cursor; the purge walks the at index.
CREATE TABLE audit_events (
	id         TEXT PRIMARY KEY,
	at         INTEGER NOT NULL,
	type       TEXT NOT NULL,
	user_id    TEXT NOT NULL DEFAULT '',
	session_id TEXT NOT NULL DEFAULT '',
	ip         TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_type ON audit_events (type, id);
