-- The write-ahead log of accepted telemetry and the checkpoint of the
-- runtime model it is replayed onto.

-- AUTOINCREMENT, not a plain rowid: a Checkpoint may delete every row,
-- and a plain rowid would then hand out sequence numbers again from 1,
-- below the checkpoint, where replay would skip them.
CREATE TABLE batches (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	kind        TEXT    NOT NULL,
	payload     BLOB    NOT NULL,
	appended_at INTEGER NOT NULL -- unix nanoseconds
);

-- At most one row: the model state as of seq.
CREATE TABLE checkpoint (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	seq        INTEGER NOT NULL,
	state      BLOB    NOT NULL,
	created_at INTEGER NOT NULL -- unix nanoseconds
);
