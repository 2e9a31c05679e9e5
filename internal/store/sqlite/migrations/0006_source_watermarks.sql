-- How far each query-API source (Tempo, Pyroscope) has been read: serve
-- resumes each from here after a restart.

CREATE TABLE source_watermarks (
	name TEXT    PRIMARY KEY,
	time INTEGER NOT NULL -- unix nanoseconds: the end of the last window read
);
