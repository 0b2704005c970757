-- The v1 layout (outpost_schema_version = 1): one table of (bucket, k, v)
-- rows holding store/kv's buckets, keys bytea so that rows sort byte-wise
-- exactly as bbolt keys do, and the single chain-head row every read-write
-- transaction locks first. outpost_schema_version stays as the marker that
-- builds before the migration runner check (the runner keeps it at the
-- newest version applied, so they refuse a database they cannot read).
CREATE TABLE IF NOT EXISTS outpost_schema_version (
	version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS outpost_kv (
	bucket text COLLATE "C" NOT NULL,
	k      bytea NOT NULL,
	v      bytea NOT NULL,
	PRIMARY KEY (bucket, k)
);
CREATE TABLE IF NOT EXISTS outpost_chain_head (
	id integer PRIMARY KEY CHECK (id = 1)
);
INSERT INTO outpost_chain_head (id) VALUES (1) ON CONFLICT DO NOTHING;
