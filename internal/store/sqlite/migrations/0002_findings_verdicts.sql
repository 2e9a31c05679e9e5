-- Imported findings and the history of their runtime verdicts.

-- One row per finding; doc is the finding as JSON (findings.Finding), the
-- key columns are copies of its fields for lookups.
CREATE TABLE findings (
	service TEXT NOT NULL,
	purl    TEXT NOT NULL,
	vuln_id TEXT NOT NULL,
	doc     TEXT NOT NULL,
	PRIMARY KEY (service, purl, vuln_id)
) WITHOUT ROWID;

CREATE TABLE verdict_history (
	id           INTEGER PRIMARY KEY,
	time         INTEGER NOT NULL, -- unix nanoseconds
	service      TEXT    NOT NULL,
	vuln_id      TEXT    NOT NULL,
	purl         TEXT    NOT NULL,
	from_verdict TEXT    NOT NULL,
	to_verdict   TEXT    NOT NULL,
	reason       TEXT    NOT NULL
);
CREATE INDEX verdict_history_finding ON verdict_history (service, vuln_id, time);
-- Retention deletes by time.
CREATE INDEX verdict_history_time ON verdict_history (time);
