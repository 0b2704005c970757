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
