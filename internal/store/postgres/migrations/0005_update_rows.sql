-- Shared transactions (REPEATABLE READ, postgres/buffer.go) rely on the
-- database failing the second of two that write one key. It does when
-- both update or delete the row, and when both insert it; it does not
-- when one deletes the row and the other, having read it, writes it back
-- with INSERT … ON CONFLICT: the row is gone, so the insert takes no
-- conflict path and both commit (a lease counter deleted at zero by a
-- release and rewritten from its old value by an issue on another
-- instance counted one lease too many). A shared transaction therefore
-- writes a key it read as present with this function: an UPDATE, which
-- fails with a serialization error when a concurrent transaction deleted
-- the row (and, should the row be gone without one, this raises it), so
-- the transaction runs again on a fresh snapshot.
CREATE OR REPLACE FUNCTION outpost_update_rows(bs text[], ks bytea[], vs bytea[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1 .. coalesce(array_length(bs, 1), 0) LOOP
		UPDATE outpost_kv SET v = vs[i] WHERE bucket = bs[i] AND k = ks[i];
		IF NOT FOUND THEN
			RAISE EXCEPTION 'row % of % was deleted by a concurrent transaction', encode(ks[i], 'hex'), bs[i]
				USING ERRCODE = 'serialization_failure';
		END IF;
	END LOOP;
END
$$;
-- A database written by builds before this one may hold a lease counter
-- that race left too high, a seat refused for good (the sweep only pops
-- expiry entries). Dropping the mark that says the counters are complete
-- makes the next write rebuild the lease and seat counters and the expiry
-- index from the active sets (store/kv ensureCounted), once.
DELETE FROM outpost_kv WHERE bucket = 'meta' AND k = convert_to('lease_counters_v1', 'UTF8');
