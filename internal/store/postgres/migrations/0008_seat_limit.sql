-- The seed's last rule the database did not enforce (issue 18): seat
-- assignments keep within max_seats when seat_assignment_mode is
-- "explicit". A narrow row per entitlement counts its active seats beside
-- the limit its policy sets, max_seats less the seats given to mirrors
-- (catalog.EntitlementPolicy.OnlineSeats), or 0 in automatic mode, where
-- nobody assigns seats. A transaction that takes a seat and commits the
-- count past the limit is refused. A policy that lowers the limit below the
-- seats already assigned is not: those stay, and no new one fits until
-- enough are revoked (as store/kv does). Explicit seats of one entitlement
-- already contend for store/kv's seat counter, so the count adds no
-- waiting; leases are not counted here, as that would need the current
-- time and every active lease of the entitlement (docs/licensing.md).
--
-- Seats are also fixed to their entitlement and subject, as leases are
-- (migration 6): moving one would move its count too.

-- The JSON number of a count: a whole number of at most nine digits, or 0
-- for anything else (store/kv refuses such a policy before it counts).
CREATE FUNCTION outpost_seat_number(x jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN jsonb_typeof(x) = 'number' AND x::text ~ '^[0-9]{1,9}$' THEN x::text::bigint ELSE 0 END
$$;
-- The seats an entitlement's policy lets the control plane assign.
CREATE FUNCTION outpost_seat_limit(p jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
	SELECT CASE WHEN p->>'seat_assignment_mode' = 'explicit' THEN
		greatest(0, outpost_seat_number(p->'max_seats') - coalesce((
			SELECT sum(outpost_seat_number(m.v)) FROM jsonb_each(
				CASE WHEN jsonb_typeof(p->'mirror_seats') = 'object' THEN p->'mirror_seats' ELSE '{}'::jsonb END) AS m(k, v)), 0))::integer
	ELSE 0 END
$$;
CREATE TABLE outpost_seat_count (
	entitlement_id text COLLATE "C" PRIMARY KEY
		REFERENCES outpost_entitlement_ref DEFERRABLE INITIALLY DEFERRED,
	seat_limit     integer NOT NULL,
	active         integer NOT NULL DEFAULT 0 CHECK (active >= 0)
);

-- An entitlement's limit, after migration 4's projection has its row
-- (triggers of one event fire in name order: outpost_project first).
CREATE FUNCTION outpost_seat_policy() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	lim integer := outpost_seat_limit(convert_from(NEW.v, 'UTF8')::jsonb->'policy_json');
BEGIN
	INSERT INTO outpost_seat_count (entitlement_id, seat_limit)
	VALUES (convert_from(NEW.k, 'UTF8'), lim)
	ON CONFLICT (entitlement_id) DO UPDATE SET seat_limit = excluded.seat_limit
		WHERE outpost_seat_count.seat_limit <> excluded.seat_limit;
	RETURN NULL;
END
$$;
CREATE TRIGGER outpost_seat_policy AFTER INSERT OR UPDATE ON outpost_kv
	FOR EACH ROW WHEN (NEW.bucket = 'entitlements')
	EXECUTE FUNCTION outpost_seat_policy();

-- A seat that becomes active takes one of its entitlement's seats; one
-- revoked gives it back. A revoked seat never becomes active again
-- (migration 4).
CREATE FUNCTION outpost_seat_count() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF TG_OP = 'UPDATE' THEN
		IF NEW.entitlement_id <> OLD.entitlement_id OR NEW.subject_type <> OLD.subject_type
			OR NEW.subject_id <> OLD.subject_id THEN
			RAISE EXCEPTION 'outpost: seat assignment % cannot move to another entitlement or subject', OLD.seat_assignment_id
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
		IF OLD.active AND NOT NEW.active THEN
			UPDATE outpost_seat_count SET active = active - 1 WHERE entitlement_id = NEW.entitlement_id;
		END IF;
		IF OLD.active OR NOT NEW.active THEN
			RETURN NULL;
		END IF;
	ELSIF NOT NEW.active THEN
		RETURN NULL;
	END IF;
	UPDATE outpost_seat_count SET active = active + 1 WHERE entitlement_id = NEW.entitlement_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'outpost: seat assignment % names entitlement %, which is not stored before it',
			NEW.seat_assignment_id, NEW.entitlement_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER outpost_seat_count AFTER INSERT OR UPDATE ON outpost_seat_ref
	FOR EACH ROW EXECUTE FUNCTION outpost_seat_count();

-- The limit, checked at the commit, when the transaction has taken a
-- seat: what counts is the state it commits, as store/kv's batches write
-- a revocation and an assignment of one entitlement in whatever order
-- its statements go (inserts first).
CREATE FUNCTION outpost_seat_limit_check() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	n   integer;
	lim integer;
BEGIN
	SELECT active, seat_limit INTO n, lim FROM outpost_seat_count WHERE entitlement_id = NEW.entitlement_id;
	IF n > lim THEN
		RAISE EXCEPTION 'outpost: no free seat on entitlement %: % seats active, its policy allows %', NEW.entitlement_id, n, lim
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER outpost_seat_limit AFTER UPDATE ON outpost_seat_count
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW WHEN (NEW.active > OLD.active)
	EXECUTE FUNCTION outpost_seat_limit_check();

-- The entitlements already stored, with the seats active now. None is
-- refused: a limit lowered below what is assigned is allowed (above).
-- Only entitlement rows are parsed (OFFSET 0: see migration 6).
INSERT INTO outpost_seat_count (entitlement_id, seat_limit, active)
	SELECT e.id, outpost_seat_limit(e.j->'policy_json'),
		(SELECT count(*) FROM outpost_seat_ref s WHERE s.entitlement_id = e.id AND s.active)
	FROM (SELECT convert_from(k, 'UTF8') AS id, convert_from(v, 'UTF8')::jsonb AS j
		FROM (SELECT k, v FROM outpost_kv WHERE bucket = 'entitlements' OFFSET 0) AS stored) AS e;
