-- A version of each tenant's joins, which API replicas read with the
-- shards' updated_at (ViewVersions) to rebuild the merged view of only
-- the tenants whose shards or joins changed since they last built it.
-- Only the join, one transaction at a time across every process (its
-- advisory lock), deletes pending calls and writes the joined tables, so
-- the triggers below update these rows from one transaction at a time.
-- The pending calls a checkpoint inserts come with the shard of their
-- tenant, whose updated_at tells: no trigger on those inserts, which
-- checkpoints of several engines make at once.
CREATE TABLE join_versions (
	tenant  TEXT   PRIMARY KEY,
	version BIGINT NOT NULL
);
CREATE FUNCTION join_tenants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO join_versions (tenant, version) SELECT DISTINCT tenant, 1 FROM changed ORDER BY tenant
		ON CONFLICT (tenant) DO UPDATE SET version = join_versions.version + 1;
	RETURN NULL;
END;
$$;
-- A trigger with a transition table is of one event.
CREATE TRIGGER join_callers_deleted AFTER DELETE ON join_callers
	REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
CREATE TRIGGER join_callees_deleted AFTER DELETE ON join_callees
	REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
CREATE TRIGGER join_edges_inserted AFTER INSERT ON join_edges
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
CREATE TRIGGER join_edges_updated AFTER UPDATE ON join_edges
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
CREATE TRIGGER join_linked_inserted AFTER INSERT ON join_linked
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
CREATE TRIGGER join_linked_updated AFTER UPDATE ON join_linked
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
CREATE TRIGGER join_resolved_inserted AFTER INSERT ON join_resolved
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
CREATE TRIGGER join_resolved_updated AFTER UPDATE ON join_resolved
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
