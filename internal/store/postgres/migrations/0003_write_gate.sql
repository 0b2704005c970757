-- The write gate (issue 18): a table nothing reads or writes, whose table
-- lock writers take first: exclusive writers in EXCLUSIVE mode, one at a
-- time; shared writers (new releases) in SHARE mode, side by side
-- (postgres/buffer.go).
CREATE TABLE IF NOT EXISTS outpost_write_gate ();
-- Builds before this migration serialize their writes on the chain-head
-- row, which would not exclude shared writers. Dropping it makes their
-- writes fail (reads go on) until they are restarted, when they refuse
-- the newer schema: an exception to the add-only rule, made so that an
-- old and a new build can never write side by side.
DROP TABLE IF EXISTS outpost_chain_head;
