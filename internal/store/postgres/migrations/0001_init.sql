-- The schema of the PostgreSQL store, equal in meaning to the SQLite
-- store's after its migration 0006. Times are BIGINT unix nanoseconds, as
-- in SQLite: timestamptz keeps microseconds only, and the store returns
-- the times it was given exactly.

-- Counters that hand out sequence numbers. A counter row is updated in
-- the transaction that uses its numbers, so a rolled-back append hands
-- out nothing, a deleted batch's number is never handed out again, and
-- the row lock orders the appends of every process that shares the
-- database: sequence numbers increase in commit order.
CREATE TABLE counters (
	name TEXT   PRIMARY KEY,
	last BIGINT NOT NULL
);
INSERT INTO counters (name, last) VALUES ('batches', 0);

-- The write-ahead log of accepted telemetry.
CREATE TABLE batches (
	seq         BIGINT PRIMARY KEY,
	tenant      TEXT   NOT NULL,
	kind        TEXT   NOT NULL,
	payload     BYTEA  NOT NULL,
	appended_at BIGINT NOT NULL
);
CREATE INDEX batches_tenant_seq ON batches (tenant, seq);

-- The runtime model of each tenant as of seq.
CREATE TABLE checkpoints (
	tenant     TEXT   PRIMARY KEY,
	seq        BIGINT NOT NULL,
	state      BYTEA  NOT NULL,
	created_at BIGINT NOT NULL
);
-- Out of line, uncompressed: a state is written at every checkpoint and
-- read once at start, and compressing megabytes each time costs the
-- server more than the space saves (a third of BenchmarkStore/Checkpoint).
ALTER TABLE checkpoints ALTER COLUMN state SET STORAGE EXTERNAL;

-- Imported findings; doc is the finding as JSON text, kept byte for byte
-- (not jsonb, which would reorder it) so a replacement can tell a
-- changed finding from an unchanged one.
CREATE TABLE findings (
	tenant  TEXT NOT NULL,
	service TEXT NOT NULL,
	purl    TEXT NOT NULL,
	vuln_id TEXT NOT NULL,
	doc     TEXT NOT NULL,
	PRIMARY KEY (tenant, service, purl, vuln_id)
);

CREATE TABLE verdict_history (
	id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant       TEXT   NOT NULL,
	time         BIGINT NOT NULL,
	service      TEXT   NOT NULL,
	vuln_id      TEXT   NOT NULL,
	purl         TEXT   NOT NULL,
	from_verdict TEXT   NOT NULL,
	to_verdict   TEXT   NOT NULL,
	reason       TEXT   NOT NULL,
	vex_from     TEXT   NOT NULL,
	vex_to       TEXT   NOT NULL
);
CREATE INDEX verdict_history_finding ON verdict_history (tenant, service, vuln_id, time);
-- Retention deletes by time.
CREATE INDEX verdict_history_time ON verdict_history (time);

CREATE TABLE alerts (
	tenant      TEXT   NOT NULL,
	id          TEXT   NOT NULL,
	kind        TEXT   NOT NULL,
	severity    TEXT   NOT NULL,
	service     TEXT   NOT NULL,
	summary     TEXT   NOT NULL,
	details     TEXT,           -- JSON kept byte for byte, NULL when there are none
	time        BIGINT NOT NULL,
	received_at BIGINT,         -- NULL when unknown
	PRIMARY KEY (tenant, id)
);
CREATE INDEX alerts_time ON alerts (time);
CREATE INDEX alerts_tenant_time ON alerts (tenant, time);
CREATE INDEX alerts_tenant_service_time ON alerts (tenant, service, time);

-- Only the SHA-256 of a token's secret is kept. tenant '': none.
CREATE TABLE tokens (
	id          TEXT   PRIMARY KEY,
	name        TEXT   NOT NULL,
	roles       TEXT[] NOT NULL,
	tenant      TEXT   NOT NULL,
	secret_hash BYTEA  NOT NULL,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT,          -- NULL: never
	revoked_at  BIGINT           -- NULL: not revoked
);

-- The hash chain of store.AuditEntry; details are kept byte for byte, as
-- the hash covers them.
CREATE TABLE audit_log (
	seq       BIGINT PRIMARY KEY,
	time      BIGINT NOT NULL,
	actor     TEXT   NOT NULL,
	action    TEXT   NOT NULL,
	target    TEXT   NOT NULL,
	details   TEXT   NOT NULL,
	prev_hash TEXT   NOT NULL,
	hash      TEXT   NOT NULL
);

-- Append-only: evident never changes an entry. A role that may drop the
-- trigger can still edit; the hash chain is what shows the edit then.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- How far each query-API source (Tempo, Pyroscope) has been read.
CREATE TABLE source_watermarks (
	name TEXT   PRIMARY KEY,
	time BIGINT NOT NULL
);
