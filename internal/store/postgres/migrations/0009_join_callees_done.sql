-- A pending callee the join is done with (joined with its caller, or
-- counted unlinked when its window passed) stays, marked done, until
-- twice the join window has passed since it was received: the same
-- callee handed over again meanwhile (a checkpoint retried after its
-- commit's acknowledgement was lost, which gives its calls back, when a
-- join took them in between) meets it and is skipped. Before, the row
-- was deleted, and the callee handed over again was joined, or counted
-- unlinked, a second time.
ALTER TABLE join_callees ADD COLUMN done BOOLEAN NOT NULL DEFAULT false;
-- A callee leaves the pending ones (the view's SpanCounts.Pending) when
-- it is marked done, no longer when it is deleted: deleting a done row
-- changes no view.
DROP TRIGGER join_callees_deleted ON join_callees;
CREATE TRIGGER join_callees_done AFTER UPDATE ON join_callees
	REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION join_tenants_changed();
