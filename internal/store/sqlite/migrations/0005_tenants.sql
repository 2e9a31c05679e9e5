-- Tenants: every row of the telemetry log, the checkpoints, the findings,
-- the verdict history and the alerts belongs to one tenant; rows from
-- before are the default tenant's. A token may be bound to a tenant ('':
-- none).

ALTER TABLE batches ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX batches_tenant_seq ON batches (tenant, seq);

CREATE TABLE checkpoints (
	tenant     TEXT    PRIMARY KEY,
	seq        INTEGER NOT NULL,
	state      BLOB    NOT NULL,
	created_at INTEGER NOT NULL -- unix nanoseconds
) WITHOUT ROWID;
INSERT INTO checkpoints (tenant, seq, state, created_at) SELECT 'default', seq, state, created_at FROM checkpoint;
DROP TABLE checkpoint;

CREATE TABLE findings_by_tenant (
	tenant  TEXT NOT NULL,
	service TEXT NOT NULL,
	purl    TEXT NOT NULL,
	vuln_id TEXT NOT NULL,
	doc     TEXT NOT NULL,
	PRIMARY KEY (tenant, service, purl, vuln_id)
) WITHOUT ROWID;
INSERT INTO findings_by_tenant (tenant, service, purl, vuln_id, doc) SELECT 'default', service, purl, vuln_id, doc FROM findings;
DROP TABLE findings;
ALTER TABLE findings_by_tenant RENAME TO findings;

ALTER TABLE verdict_history ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
DROP INDEX verdict_history_finding;
CREATE INDEX verdict_history_finding ON verdict_history (tenant, service, vuln_id, time);

CREATE TABLE alerts_by_tenant (
	tenant      TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	severity    TEXT    NOT NULL,
	service     TEXT    NOT NULL,
	summary     TEXT    NOT NULL,
	details     TEXT,             -- JSON, NULL when there are none
	time        INTEGER NOT NULL, -- unix nanoseconds
	received_at INTEGER,          -- unix nanoseconds, NULL when unknown
	PRIMARY KEY (tenant, id)
);
INSERT INTO alerts_by_tenant (tenant, id, kind, severity, service, summary, details, time, received_at)
	SELECT 'default', id, kind, severity, service, summary, details, time, received_at FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_by_tenant RENAME TO alerts;
CREATE INDEX alerts_time ON alerts (time);
CREATE INDEX alerts_tenant_time ON alerts (tenant, time);
CREATE INDEX alerts_tenant_service_time ON alerts (tenant, service, time);

ALTER TABLE tokens ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
