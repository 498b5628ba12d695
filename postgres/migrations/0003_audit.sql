-- Security events (the contract's Audit log). Ids are UUIDv7, so id order
-- is time order and the list's cursor; the purge walks the at index.
CREATE TABLE audit_events (
	id         text COLLATE "C" PRIMARY KEY,
	at         timestamptz NOT NULL,
	type       text NOT NULL,
	user_id    text COLLATE "C" NOT NULL DEFAULT '',
	session_id text NOT NULL DEFAULT '',
	ip         text NOT NULL DEFAULT '',
	user_agent text NOT NULL DEFAULT '',
	detail     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_type ON audit_events (type, id);
