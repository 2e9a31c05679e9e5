-- What serve's poll of a query-API source had handed on of a window it
-- left unfinished (a failure, a shutdown): a restart resumes the window
-- from here instead of reading it again from its start.

CREATE TABLE source_progress (
	name     TEXT PRIMARY KEY,
	progress BLOB NOT NULL -- the poll's record of the window (JSON)
);
