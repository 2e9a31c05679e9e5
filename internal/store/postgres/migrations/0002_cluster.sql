-- The scaled-out deployment (docs/scaling.md): engines read partitions of
-- the Kafka ingest log and checkpoint here, per tenant and partition, the
-- runtime model of the records they applied; the calls between services
-- of different partitions are joined here; API replicas merge the shards
-- with the joins. Kafka is the log: the batches table stays empty.

-- Per partition of the log, the offset after the last record the shards'
-- states hold. An engine resumes a partition it is given from here, and
-- a checkpoint behind it is refused (the partition moved on without the
-- engine that writes it).
CREATE TABLE shard_offsets (
	partition  INTEGER PRIMARY KEY,
	next       BIGINT  NOT NULL,
	updated_at BIGINT  NOT NULL
);

-- The model of one tenant's services in one partition.
CREATE TABLE shards (
	tenant     TEXT    NOT NULL,
	partition  INTEGER NOT NULL,
	state      BYTEA   NOT NULL,
	updated_at BIGINT  NOT NULL,
	PRIMARY KEY (tenant, partition)
);
ALTER TABLE shards ALTER COLUMN state SET STORAGE EXTERNAL;

-- CLIENT and PRODUCER spans waiting for the SERVER or CONSUMER spans
-- they caused, and the reverse, moved here from the shards at each
-- checkpoint. A PRODUCER span waits for every consumer of its message
-- until the join window passes; the consumers of one message wait side
-- by side.
CREATE TABLE join_callers (
	tenant   TEXT    NOT NULL,
	span_id  BYTEA   NOT NULL,
	service  TEXT    NOT NULL,
	host     TEXT    NOT NULL,
	error    BOOLEAN NOT NULL,
	producer BOOLEAN NOT NULL,
	start_ns BIGINT  NOT NULL,
	end_ns   BIGINT  NOT NULL,
	added_at BIGINT  NOT NULL,
	PRIMARY KEY (tenant, span_id)
);
CREATE INDEX join_callers_added ON join_callers (added_at);
CREATE TABLE join_callees (
	tenant   TEXT   NOT NULL,
	span_id  BYTEA  NOT NULL, -- the parent span's id
	service  TEXT   NOT NULL,
	at       BIGINT NOT NULL, -- when the engine received it
	PRIMARY KEY (tenant, span_id, service)
);
CREATE INDEX join_callees_at ON join_callees (at);

-- What the joined calls add to the merged model, cumulated.
CREATE TABLE join_edges (
	tenant   TEXT   NOT NULL,
	caller   TEXT   NOT NULL,
	callee   TEXT   NOT NULL,
	calls    BIGINT NOT NULL,
	errors   BIGINT NOT NULL,
	first_ns BIGINT NOT NULL,
	last_ns  BIGINT NOT NULL,
	PRIMARY KEY (tenant, caller, callee)
);
-- Per service, its spans joined with their caller (linked) and those
-- whose caller did not come within the window (unlinked).
CREATE TABLE join_linked (
	tenant   TEXT   NOT NULL,
	service  TEXT   NOT NULL,
	spans    BIGINT NOT NULL,
	unlinked BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant, service)
);
CREATE TABLE join_resolved (
	tenant  TEXT   NOT NULL,
	service TEXT   NOT NULL,
	host    TEXT   NOT NULL,
	callee  TEXT   NOT NULL,
	calls   BIGINT NOT NULL,
	PRIMARY KEY (tenant, service, host, callee)
);

-- A version of the findings, which engines poll to pick up an upload
-- made through an API replica.
INSERT INTO counters (name, last) VALUES ('findings', 0);
CREATE FUNCTION findings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE counters SET last = last + 1 WHERE name = 'findings';
	RETURN NULL;
END;
$$;
CREATE TRIGGER findings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON findings
	FOR EACH STATEMENT EXECUTE FUNCTION findings_changed();
