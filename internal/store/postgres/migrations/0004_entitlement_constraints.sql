-- The seed's relational rules for tenants, products, entitlements and
-- seat assignments, enforced by the database (issue 18): every
-- entitlement names a tenant and a product that exist and every seat an
-- entitlement (foreign keys), two entitlements of one tenant and product
-- never overlap in time (an exclusion constraint on [starts_at,
-- ends_at)), a subject holds at most one active seat of an entitlement,
-- and a revoked seat stays revoked. store/kv checks both in its exclusive
-- transaction first and answers 409; these are the backstop that makes a
-- write that got past it (a bug, or an edit behind the store's back) fail
-- rather than store a state the model forbids. The rows of outpost_kv stay
-- the source; a trigger keeps one narrow row a key in the tables below.
-- Releases and leases are not projected: they are the hot write paths,
-- and a trigger there would cost every write (docs/architecture.md).
--
-- btree_gist gives gist the = of text that the exclusion constraint needs.
-- It goes into a schema of its own, once per database, so that dropping a
-- store's schema never takes it (or another store's constraint with it).
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
		CREATE SCHEMA IF NOT EXISTS outpost_ext;
		CREATE EXTENSION btree_gist SCHEMA outpost_ext;
	END IF;
END
$$;
CREATE TABLE outpost_tenant_ref (
	tenant_id text COLLATE "C" PRIMARY KEY
);
CREATE TABLE outpost_product_ref (
	product_id text COLLATE "C" PRIMARY KEY
);
-- Deferred: one transaction may write an entitlement before its tenant
-- (buffered writes go out in key order), or move two windows past each
-- other; what counts is the state it commits.
CREATE TABLE outpost_entitlement_ref (
	entitlement_id text COLLATE "C" PRIMARY KEY,
	tenant_id      text COLLATE "C" NOT NULL
		REFERENCES outpost_tenant_ref DEFERRABLE INITIALLY DEFERRED,
	product_id     text COLLATE "C" NOT NULL
		REFERENCES outpost_product_ref DEFERRABLE INITIALLY DEFERRED,
	during         tstzrange NOT NULL,
	CONSTRAINT outpost_entitlements_no_overlap
		EXCLUDE USING gist (tenant_id WITH =, product_id WITH =, during WITH &&)
		DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE outpost_seat_ref (
	seat_assignment_id text COLLATE "C" PRIMARY KEY,
	entitlement_id     text COLLATE "C" NOT NULL
		REFERENCES outpost_entitlement_ref DEFERRABLE INITIALLY DEFERRED,
	subject_type       text COLLATE "C" NOT NULL,
	subject_id         text COLLATE "C" NOT NULL,
	active             boolean NOT NULL,
	CONSTRAINT outpost_seats_one_active
		EXCLUDE USING btree (entitlement_id WITH =, subject_type WITH =, subject_id WITH =)
		WHERE (active) DEFERRABLE INITIALLY DEFERRED
);
-- outpost_project keeps the rows above in step with outpost_kv. Values are
-- store/kv's JSON; the key must be the id the value holds. The function
-- resolves its tables in the schema it was created in, whatever the
-- search_path of the session writing.
CREATE FUNCTION outpost_project() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	id text := convert_from(NEW.k, 'UTF8');
	j  jsonb := convert_from(NEW.v, 'UTF8')::jsonb;
	f  text := CASE NEW.bucket WHEN 'tenants' THEN 'tenant_id'
		WHEN 'products' THEN 'product_id' WHEN 'entitlements' THEN 'entitlement_id'
		ELSE 'seat_assignment_id' END;
BEGIN
	IF j->>f IS DISTINCT FROM id THEN
		RAISE EXCEPTION 'outpost: row % of bucket % holds % %', id, NEW.bucket, f, j->>f
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	CASE NEW.bucket
	WHEN 'tenants' THEN
		INSERT INTO outpost_tenant_ref (tenant_id) VALUES (id) ON CONFLICT DO NOTHING;
	WHEN 'products' THEN
		INSERT INTO outpost_product_ref (product_id) VALUES (id) ON CONFLICT DO NOTHING;
	WHEN 'entitlements' THEN
		INSERT INTO outpost_entitlement_ref (entitlement_id, tenant_id, product_id, during)
		VALUES (id, j->>'tenant_id', j->>'product_id',
			tstzrange((j->>'starts_at')::timestamptz, (j->>'ends_at')::timestamptz, '[)'))
		ON CONFLICT (entitlement_id) DO UPDATE
			SET tenant_id = excluded.tenant_id, product_id = excluded.product_id, during = excluded.during;
	WHEN 'seats' THEN
		IF j->'revoked_at' = 'null'::jsonb AND EXISTS (
			SELECT 1 FROM outpost_seat_ref WHERE seat_assignment_id = id AND NOT active) THEN
			RAISE EXCEPTION 'outpost: seat assignment % was revoked and cannot be active again', id
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
		INSERT INTO outpost_seat_ref (seat_assignment_id, entitlement_id, subject_type, subject_id, active)
		VALUES (id, j->>'entitlement_id', j->>'subject_type', j->>'subject_id',
			coalesce(j->'revoked_at', 'null'::jsonb) = 'null'::jsonb)
		ON CONFLICT (seat_assignment_id) DO UPDATE
			SET entitlement_id = excluded.entitlement_id, subject_type = excluded.subject_type,
				subject_id = excluded.subject_id, active = excluded.active;
	END CASE;
	RETURN NULL;
END
$$;
CREATE TRIGGER outpost_project AFTER INSERT OR UPDATE ON outpost_kv
	FOR EACH ROW WHEN (NEW.bucket IN ('tenants', 'products', 'entitlements', 'seats'))
	EXECUTE FUNCTION outpost_project();
-- store/kv never deletes these rows nor changes their keys (a revoked
-- seat stays, as history); neither may anyone else (a deleted tenant
-- would leave its entitlements naming nothing, a renamed one two ids for
-- one tenant).
CREATE FUNCTION outpost_keep_rows() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'outpost: % rows are never deleted or re-keyed (% refused)', OLD.bucket, TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER outpost_keep_rows_delete BEFORE DELETE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket IN ('tenants', 'products', 'entitlements', 'seats'))
	EXECUTE FUNCTION outpost_keep_rows();
CREATE TRIGGER outpost_keep_rows_update BEFORE UPDATE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket IN ('tenants', 'products', 'entitlements', 'seats')
		AND (OLD.bucket <> NEW.bucket OR OLD.k <> NEW.k))
	EXECUTE FUNCTION outpost_keep_rows();
-- The rows already stored: a database that breaks a rule stops here, at
-- this migration, with the constraint's message, and stays as it was.
UPDATE outpost_kv SET v = v WHERE bucket IN ('tenants', 'products', 'entitlements', 'seats');
SET CONSTRAINTS ALL IMMEDIATE;
