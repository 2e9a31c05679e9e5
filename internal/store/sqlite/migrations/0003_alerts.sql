-- Fired alerts.

CREATE TABLE alerts (
	id          TEXT    PRIMARY KEY,
	kind        TEXT    NOT NULL,
	severity    TEXT    NOT NULL,
	service     TEXT    NOT NULL,
	summary     TEXT    NOT NULL,
	details     TEXT,             -- JSON, NULL when there are none
	time        INTEGER NOT NULL, -- unix nanoseconds
	received_at INTEGER           -- unix nanoseconds, NULL when unknown
);
CREATE INDEX alerts_time ON alerts (time);
CREATE INDEX alerts_service_time ON alerts (service, time);
