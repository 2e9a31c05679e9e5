-- An alert's dedupe key and observation, which the alert router is
-- seeded with (FiredAlerts), in columns of their own: read from the
-- details, each a JSON document of the evidence, they took seconds a
-- tenant. NULL dedupe_key: stored before this migration (or by an
-- engine not upgraded yet), whose details the reader decodes; '' is an
-- alert without a key.

ALTER TABLE alerts ADD COLUMN dedupe_key TEXT;
ALTER TABLE alerts ADD COLUMN observed BIGINT; -- unix nanoseconds, NULL when unknown
