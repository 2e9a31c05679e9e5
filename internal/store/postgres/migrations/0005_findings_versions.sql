-- A version of each tenant's findings, in place of one for all tenants:
-- engines and API replicas poll it and reload the findings of the
-- tenants an upload changed, not of every tenant they hold. Each
-- statement that inserts, updates or deletes findings increments the
-- versions of the tenants of its rows.
CREATE TABLE findings_versions (
	tenant  TEXT   PRIMARY KEY,
	version BIGINT NOT NULL
);
INSERT INTO findings_versions (tenant, version) SELECT DISTINCT tenant, 1 FROM findings;
CREATE FUNCTION findings_tenants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO findings_versions (tenant, version) SELECT DISTINCT tenant, 1 FROM changed
		ON CONFLICT (tenant) DO UPDATE SET version = findings_versions.version + 1;
	RETURN NULL;
END;
$$;
-- A trigger with a transition table is of one event; evident never
-- truncates findings.
CREATE TRIGGER findings_inserted AFTER INSERT ON findings
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION findings_tenants_changed();
CREATE TRIGGER findings_updated AFTER UPDATE ON findings
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION findings_tenants_changed();
CREATE TRIGGER findings_deleted AFTER DELETE ON findings
	REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION findings_tenants_changed();
-- The version of all tenants' findings (counters 'findings', migration
-- 2) stays, with its trigger: the replicas of the previous evident that
-- still run during a rolling upgrade read it.
