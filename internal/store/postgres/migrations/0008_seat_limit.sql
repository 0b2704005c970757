-- The seed's last rule the database did not enforce (issue 18): an
-- entitlement's seats keep within max_seats. In explicit mode they are
-- the seat assignments; in automatic mode (the default) "seats are
-- tracked automatically through active leases", and in both a lease is
-- issued only while a seat is free. The limit is what store/kv enforces:
-- max_seats less the seats given to mirrors
-- (catalog.EntitlementPolicy.OnlineSeats) for leases, and the same for
-- seat assignments in explicit mode, 0 in automatic mode, where nobody
-- assigns seats.
--
-- Narrow rows per entitlement count its active seat assignments
-- (outpost_seat_count) and its active leases (outpost_lease_count): the
-- rows of store/kv's active set, idx_lease_active, one per subject
-- holding a lease. store/kv takes a lease out of that set when it is
-- released, swept, or found expired by the next issuance, so the count
-- needs no clock. A transaction that takes a seat or a lease and commits
-- a count past its limit is refused, at the commit: a batch sends its
-- inserts before its deletes, so what counts is the state it commits. A
-- policy that lowers a limit below what is out is not refused: those
-- stay, and no new one fits until enough are given back (as store/kv
-- does). The counts add no waiting: explicit seats of one entitlement
-- already contend for store/kv's seat counter, and leases for its lease
-- counter (two rows, so that seats and leases do not wait for each
-- other).
--
-- Seats are also fixed to their entitlement and subject, as leases are
-- (migration 6): moving one would move its count too.

-- The JSON number of a count: a whole number of at most nine digits, or 0
-- for anything else (store/kv refuses such a policy before it counts).
CREATE FUNCTION outpost_seat_number(x jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE WHEN jsonb_typeof(x) = 'number' AND x::text ~ '^[0-9]{1,9}$' THEN x::text::bigint ELSE 0 END
$$;
-- The seats an entitlement's policy lets the control plane hand out:
-- max_seats less the mirrors' (OnlineSeats).
CREATE FUNCTION outpost_online_seats(p jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
	SELECT greatest(0, outpost_seat_number(p->'max_seats') - coalesce((
		SELECT sum(outpost_seat_number(m.v)) FROM jsonb_each(
			CASE WHEN jsonb_typeof(p->'mirror_seats') = 'object' THEN p->'mirror_seats' ELSE '{}'::jsonb END) AS m(k, v)), 0))::integer
$$;
-- The seats it lets the control plane assign.
CREATE FUNCTION outpost_seat_limit(p jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
	SELECT CASE WHEN p->>'seat_assignment_mode' = 'explicit' THEN outpost_online_seats(p) ELSE 0 END
$$;
CREATE TABLE outpost_seat_count (
	entitlement_id text COLLATE "C" PRIMARY KEY
		REFERENCES outpost_entitlement_ref DEFERRABLE INITIALLY DEFERRED,
	seat_limit     integer NOT NULL,
	active         integer NOT NULL DEFAULT 0 CHECK (active >= 0)
);
CREATE TABLE outpost_lease_count (
	entitlement_id text COLLATE "C" PRIMARY KEY
		REFERENCES outpost_entitlement_ref DEFERRABLE INITIALLY DEFERRED,
	lease_limit    integer NOT NULL,
	active         integer NOT NULL DEFAULT 0 CHECK (active >= 0)
);

-- An entitlement's limits, after migration 4's projection has its row
-- (triggers of one event fire in name order: outpost_project first).
CREATE FUNCTION outpost_seat_policy() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	id  text := convert_from(NEW.k, 'UTF8');
	pol jsonb := convert_from(NEW.v, 'UTF8')::jsonb->'policy_json';
BEGIN
	INSERT INTO outpost_seat_count (entitlement_id, seat_limit) VALUES (id, outpost_seat_limit(pol))
	ON CONFLICT (entitlement_id) DO UPDATE SET seat_limit = excluded.seat_limit
		WHERE outpost_seat_count.seat_limit <> excluded.seat_limit;
	INSERT INTO outpost_lease_count (entitlement_id, lease_limit) VALUES (id, outpost_online_seats(pol))
	ON CONFLICT (entitlement_id) DO UPDATE SET lease_limit = excluded.lease_limit
		WHERE outpost_lease_count.lease_limit <> excluded.lease_limit;
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

-- A subject that enters the active set takes one of the entitlement's
-- seats; one that leaves gives it back (the key is entitlement NUL type
-- NUL subject: license.SubjectKey). A lease renewed, or replaced by the
-- subject's next, keeps its row (an update, not counted).
CREATE FUNCTION outpost_lease_count() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	k   bytea := CASE TG_OP WHEN 'INSERT' THEN NEW.k ELSE OLD.k END;
	cut integer := position('\x00'::bytea IN k);
	ent text := convert_from(CASE WHEN cut > 0 THEN substring(k FROM 1 FOR cut - 1) ELSE k END, 'UTF8');
BEGIN
	UPDATE outpost_lease_count SET active = active + CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END
		WHERE entitlement_id = ent;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'outpost: an active lease of entitlement %, which is not stored', ent
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER outpost_lease_count_in AFTER INSERT ON outpost_kv
	FOR EACH ROW WHEN (NEW.bucket = 'idx_lease_active')
	EXECUTE FUNCTION outpost_lease_count();
CREATE TRIGGER outpost_lease_count_out AFTER DELETE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket = 'idx_lease_active')
	EXECUTE FUNCTION outpost_lease_count();

-- The limits, checked at the commit of a transaction that took a seat or
-- a lease, on the counts it commits.
CREATE FUNCTION outpost_seat_limit_check() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	n   integer;
	lim integer;
BEGIN
	IF TG_TABLE_NAME = 'outpost_seat_count' THEN
		SELECT active, seat_limit INTO n, lim FROM outpost_seat_count WHERE entitlement_id = NEW.entitlement_id;
	ELSE
		SELECT active, lease_limit INTO n, lim FROM outpost_lease_count WHERE entitlement_id = NEW.entitlement_id;
	END IF;
	IF n > lim THEN
		RAISE EXCEPTION 'outpost: no free seat on entitlement %: % % active, its policy allows %', NEW.entitlement_id, n,
			CASE TG_TABLE_NAME WHEN 'outpost_seat_count' THEN 'seat assignments' ELSE 'leases' END, lim
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER outpost_seat_limit AFTER UPDATE ON outpost_seat_count
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW WHEN (NEW.active > OLD.active)
	EXECUTE FUNCTION outpost_seat_limit_check();
CREATE CONSTRAINT TRIGGER outpost_lease_limit AFTER UPDATE ON outpost_lease_count
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW WHEN (NEW.active > OLD.active)
	EXECUTE FUNCTION outpost_seat_limit_check();

-- The entitlements already stored, with the seats and leases active now.
-- None is refused: a limit lowered below what is out is allowed (above).
-- Only entitlement rows and active-set keys are read (OFFSET 0: see
-- migration 6).
CREATE TEMPORARY VIEW outpost_stored_entitlements AS
	SELECT convert_from(k, 'UTF8') AS id, convert_from(v, 'UTF8')::jsonb->'policy_json' AS pol
	FROM (SELECT k, v FROM outpost_kv WHERE bucket = 'entitlements' OFFSET 0) AS stored;
INSERT INTO outpost_seat_count (entitlement_id, seat_limit, active)
	SELECT e.id, outpost_seat_limit(e.pol),
		(SELECT count(*) FROM outpost_seat_ref s WHERE s.entitlement_id = e.id AND s.active)
	FROM outpost_stored_entitlements e;
INSERT INTO outpost_lease_count (entitlement_id, lease_limit, active)
	SELECT e.id, outpost_online_seats(e.pol), coalesce(a.n, 0)
	FROM outpost_stored_entitlements e
	LEFT JOIN (SELECT convert_from(substring(k FROM 1 FOR position('\x00'::bytea IN k) - 1), 'UTF8') AS id, count(*) AS n
		FROM (SELECT k FROM outpost_kv WHERE bucket = 'idx_lease_active' OFFSET 0) AS held
		WHERE position('\x00'::bytea IN k) > 0
		GROUP BY 1) AS a ON a.id = e.id;
DROP VIEW outpost_stored_entitlements;
