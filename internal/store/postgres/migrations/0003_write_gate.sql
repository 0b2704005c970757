-- The write gate (issue 18): exclusive writers take the advisory lock
-- writeGate and bump outpost_write_gate.gen; shared writers take the same
-- advisory lock in shared mode and share-lock the gate row, which makes a
-- shared transaction that waited for an exclusive one fail with a
-- serialization error (its snapshot predates the exclusive commit) and
-- run again on a fresh one (postgres/buffer.go).
CREATE TABLE IF NOT EXISTS outpost_write_gate (
	id  integer PRIMARY KEY CHECK (id = 1),
	gen bigint NOT NULL DEFAULT 0
);
INSERT INTO outpost_write_gate (id) VALUES (1) ON CONFLICT DO NOTHING;
-- Builds before this migration serialize their writes on the chain-head
-- row, which would not exclude shared writers. Dropping it makes their
-- writes fail (reads go on) until they are restarted, when they refuse
-- the newer schema: an exception to the add-only rule, made so that an
-- old and a new build can never write side by side.
DROP TABLE IF EXISTS outpost_chain_head;
