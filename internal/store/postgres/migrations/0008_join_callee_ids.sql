-- A pending callee is keyed by an id of its own (model.PendingCallee.SpanID,
-- derived from its parent, service, time and place among the parent's
-- children: the model does not keep a waiting span's own id), not by its
-- service alone: the
-- children of one parent from one service (the SERVER spans of a
-- retried or fanned-out CLIENT span, the process spans of a batch under
-- its receive span) are one row each, and each is joined or unlinked;
-- before, one of them was kept and the others never counted. The same
-- callee handed over twice (a record applied again) is still one row.
-- A row stored before has no id, and was alone of its parent and
-- service: the empty id keeps it unique.
ALTER TABLE join_callees ADD COLUMN callee_span_id BYTEA NOT NULL DEFAULT '';
ALTER TABLE join_callees ALTER COLUMN callee_span_id DROP DEFAULT;
ALTER TABLE join_callees DROP CONSTRAINT join_callees_pkey;
ALTER TABLE join_callees ADD PRIMARY KEY (tenant, span_id, service, callee_span_id);
