-- A version of each tenant's merged view: of its shards and of the joins
-- of the calls between them, what an API replica reads to build the
-- view. Each statement that changes them increments the versions of the
-- tenants of its rows, so that an API replica rebuilds the views of the
-- tenants that changed, not of every tenant, at each view_interval.
CREATE TABLE view_versions (
	tenant  TEXT   PRIMARY KEY,
	version BIGINT NOT NULL
);
INSERT INTO view_versions (tenant, version)
	SELECT tenant, 1 FROM shards UNION SELECT tenant, 1 FROM join_edges
	UNION SELECT tenant, 1 FROM join_linked UNION SELECT tenant, 1 FROM join_resolved
	UNION SELECT tenant, 1 FROM join_callees;
CREATE FUNCTION view_tenants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO view_versions (tenant, version) SELECT DISTINCT tenant, 1 FROM changed
		ON CONFLICT (tenant) DO UPDATE SET version = view_versions.version + 1;
	RETURN NULL;
END;
$$;
-- A trigger with a transition table is of one event and one table.
DO $$
DECLARE
	t TEXT;
BEGIN
	FOREACH t IN ARRAY ARRAY['shards', 'join_edges', 'join_linked', 'join_resolved', 'join_callees'] LOOP
		EXECUTE format('CREATE TRIGGER %1$s_inserted AFTER INSERT ON %1$s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION view_tenants_changed()', t);
		EXECUTE format('CREATE TRIGGER %1$s_updated AFTER UPDATE ON %1$s REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION view_tenants_changed()', t);
		EXECUTE format('CREATE TRIGGER %1$s_deleted AFTER DELETE ON %1$s REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION view_tenants_changed()', t);
	END LOOP;
END;
$$;
