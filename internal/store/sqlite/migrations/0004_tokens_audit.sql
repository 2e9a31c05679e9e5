-- API tokens, the audit log, and the VEX status in the verdict history.

ALTER TABLE verdict_history ADD COLUMN vex_from TEXT NOT NULL DEFAULT '';
ALTER TABLE verdict_history ADD COLUMN vex_to   TEXT NOT NULL DEFAULT '';

-- Only the SHA-256 of a token's secret is kept; roles are comma-separated.
CREATE TABLE tokens (
	id          TEXT    PRIMARY KEY,
	name        TEXT    NOT NULL,
	roles       TEXT    NOT NULL,
	secret_hash BLOB    NOT NULL,
	created_at  INTEGER NOT NULL, -- unix nanoseconds
	expires_at  INTEGER,          -- unix nanoseconds, NULL: never
	revoked_at  INTEGER           -- unix nanoseconds, NULL: not revoked
);

-- The hash chain of store.AuditEntry; details are kept byte for byte, as
-- the hash covers them.
CREATE TABLE audit_log (
	seq       INTEGER PRIMARY KEY,
	time      INTEGER NOT NULL, -- unix nanoseconds
	actor     TEXT    NOT NULL,
	action    TEXT    NOT NULL,
	target    TEXT    NOT NULL,
	details   TEXT    NOT NULL,
	prev_hash TEXT    NOT NULL,
	hash      TEXT    NOT NULL
);

-- Append-only: evident never changes an entry. Someone with the file can
-- drop these triggers; the hash chain is what shows the edit then.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
	SELECT RAISE(ABORT, 'the audit log is append-only');
END;
