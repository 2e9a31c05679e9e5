-- Per service, its spans joined with a receive or PRODUCER span of the
-- service's own (model.SpanCounts.Own): the process spans of a batch it
-- received, a message it sent itself. No traced service called them, so
-- they are not linked. Before, they counted in spans.
ALTER TABLE join_linked ADD COLUMN own BIGINT NOT NULL DEFAULT 0;
