-- The owner of a partition: a number the engine that takes the partition
-- over increments (ClaimPartition) and every checkpoint of the partition
-- must name. An engine that lost the partition without knowing it (a long
-- pause) names an older one: its checkpoint, and the calls it hands over
-- to the join, are refused, whether it checkpoints before or after the
-- new owner.
ALTER TABLE shard_offsets ADD COLUMN owner BIGINT NOT NULL DEFAULT 0;
