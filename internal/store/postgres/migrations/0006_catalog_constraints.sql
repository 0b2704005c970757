-- The rest of the seed's relational model, enforced by the database
-- (issue 18; migration 4 did tenants, products, entitlements and seats).
-- Every reference the seed names is a foreign key and every unique rule a
-- unique key, on narrow rows a trigger keeps in step with outpost_kv:
--
--   release         -> product; one release per product, channel and version
--   release artifact-> release, artifact; one per release and target
--   lease           -> entitlement, of the lease's own tenant
--   policy          -> tenant, product
--   blocked version -> tenant, product; one per tenant, product and version
--   rollout         -> product, and a release of that product and channel
--   snapshot        -> tenant; one per tenant and sequence
--   mirror          -> tenant
--
-- and the seed's rules on change: a release is append-only (only its
-- revocation changes it, once), a released lease never changes again and
-- no lease moves to another entitlement or subject, a policy's versions
-- are history (never rewritten or deleted), a snapshot is immutable once
-- created (retention may delete it, nothing may edit it), and none of
-- these rows is deleted (blocked versions and snapshots aside) or
-- re-keyed. store/kv checks all of it first and answers 409; this is the
-- backstop for a write that gets past it. Releases and leases are the hot
-- write paths: their rows project on insert only (the columns projected
-- never change), and the check on update parses the two values only when
-- the value changes. Cost: docs/BENCHMARKS.md.
CREATE TABLE outpost_artifact_ref (
	artifact_id text COLLATE "C" PRIMARY KEY
);
CREATE TABLE outpost_release_ref (
	release_id text COLLATE "C" PRIMARY KEY,
	product_id text COLLATE "C" NOT NULL
		REFERENCES outpost_product_ref DEFERRABLE INITIALLY DEFERRED,
	channel    text COLLATE "C" NOT NULL,
	version    text COLLATE "C" NOT NULL,
	CONSTRAINT outpost_releases_one_version UNIQUE (product_id, channel, version),
	-- what a rollout refers to: a release of its product and channel
	CONSTRAINT outpost_releases_in_channel UNIQUE (release_id, product_id, channel)
);
CREATE TABLE outpost_release_artifact_ref (
	release_artifact_id text COLLATE "C" PRIMARY KEY,
	release_id     text COLLATE "C" NOT NULL
		REFERENCES outpost_release_ref DEFERRABLE INITIALLY DEFERRED,
	artifact_id    text COLLATE "C" NOT NULL
		REFERENCES outpost_artifact_ref DEFERRABLE INITIALLY DEFERRED,
	platform       text COLLATE "C" NOT NULL,
	arch           text COLLATE "C" NOT NULL,
	installer_type text COLLATE "C" NOT NULL,
	CONSTRAINT outpost_release_artifacts_one_target UNIQUE (release_id, platform, arch, installer_type)
);
-- A lease draws on an entitlement of its own tenant: the pair is the key.
ALTER TABLE outpost_entitlement_ref
	ADD CONSTRAINT outpost_entitlements_tenant UNIQUE (entitlement_id, tenant_id);
CREATE TABLE outpost_lease_ref (
	lease_id       text COLLATE "C" PRIMARY KEY,
	entitlement_id text COLLATE "C" NOT NULL,
	tenant_id      text COLLATE "C" NOT NULL,
	CONSTRAINT outpost_leases_entitlement FOREIGN KEY (entitlement_id, tenant_id)
		REFERENCES outpost_entitlement_ref (entitlement_id, tenant_id) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE outpost_policy_ref (
	policy_id  text COLLATE "C" PRIMARY KEY,
	tenant_id  text COLLATE "C" NOT NULL
		REFERENCES outpost_tenant_ref DEFERRABLE INITIALLY DEFERRED,
	product_id text COLLATE "C" NOT NULL
		REFERENCES outpost_product_ref DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE outpost_blocked_ref (
	blocklist_id    text COLLATE "C" PRIMARY KEY,
	tenant_id       text COLLATE "C" NOT NULL
		REFERENCES outpost_tenant_ref DEFERRABLE INITIALLY DEFERRED,
	product_id      text COLLATE "C" NOT NULL
		REFERENCES outpost_product_ref DEFERRABLE INITIALLY DEFERRED,
	blocked_version text COLLATE "C" NOT NULL,
	CONSTRAINT outpost_blocked_versions_once UNIQUE (tenant_id, product_id, blocked_version)
		DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE outpost_rollout_ref (
	rollout_id text COLLATE "C" PRIMARY KEY,
	product_id text COLLATE "C" NOT NULL
		REFERENCES outpost_product_ref DEFERRABLE INITIALLY DEFERRED,
	channel    text COLLATE "C" NOT NULL,
	release_id text COLLATE "C" NOT NULL,
	CONSTRAINT outpost_rollouts_release FOREIGN KEY (release_id, product_id, channel)
		REFERENCES outpost_release_ref (release_id, product_id, channel) DEFERRABLE INITIALLY DEFERRED
);
CREATE TABLE outpost_snapshot_ref (
	snapshot_id text COLLATE "C" PRIMARY KEY,
	tenant_id   text COLLATE "C" NOT NULL
		REFERENCES outpost_tenant_ref DEFERRABLE INITIALLY DEFERRED,
	sequence    bigint NOT NULL,
	CONSTRAINT outpost_snapshots_one_sequence UNIQUE (tenant_id, sequence)
);
CREATE TABLE outpost_mirror_ref (
	mirror_id text COLLATE "C" PRIMARY KEY,
	tenant_id text COLLATE "C" NOT NULL
		REFERENCES outpost_tenant_ref DEFERRABLE INITIALLY DEFERRED
);

-- outpost_id_field is the member of a bucket's values that holds the row's
-- key, for the buckets this migration projects.
CREATE FUNCTION outpost_id_field(bucket text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE bucket
		WHEN 'releases' THEN 'release_id' WHEN 'leases' THEN 'lease_id'
		WHEN 'artifacts' THEN 'artifact_id' WHEN 'release_artifacts' THEN 'release_artifact_id'
		WHEN 'policies' THEN 'policy_id' WHEN 'blocked_versions' THEN 'blocklist_id'
		WHEN 'rollouts' THEN 'rollout_id' WHEN 'snapshots' THEN 'snapshot_id'
		WHEN 'mirrors' THEN 'mirror_id' END
$$;

-- outpost_project_catalog keeps the rows above in step with outpost_kv,
-- beside migration 4's outpost_project (tenants, products, entitlements,
-- seats): on insert, and on a changed value for the two buckets whose
-- projected columns may change (policies, rollouts). Its tables resolve
-- in the schema it was created in.
CREATE FUNCTION outpost_project_catalog() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	id text := convert_from(NEW.k, 'UTF8');
	j  jsonb := convert_from(NEW.v, 'UTF8')::jsonb;
	f  text := outpost_id_field(NEW.bucket);
BEGIN
	IF j->>f IS DISTINCT FROM id THEN
		RAISE EXCEPTION 'outpost: row % of bucket % holds % %', id, NEW.bucket, f, j->>f
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	CASE NEW.bucket
	WHEN 'leases' THEN
		INSERT INTO outpost_lease_ref (lease_id, entitlement_id, tenant_id)
		VALUES (id, j->>'entitlement_id', j->>'tenant_id') ON CONFLICT (lease_id) DO NOTHING;
	WHEN 'releases' THEN
		INSERT INTO outpost_release_ref (release_id, product_id, channel, version)
		VALUES (id, j->>'product_id', j->>'channel', j->>'version') ON CONFLICT (release_id) DO NOTHING;
	WHEN 'artifacts' THEN
		INSERT INTO outpost_artifact_ref (artifact_id) VALUES (id) ON CONFLICT (artifact_id) DO NOTHING;
	WHEN 'release_artifacts' THEN
		INSERT INTO outpost_release_artifact_ref (release_artifact_id, release_id, artifact_id, platform, arch, installer_type)
		VALUES (id, j->>'release_id', j->>'artifact_id', j->>'platform', j->>'arch', j->>'installer_type')
		ON CONFLICT (release_artifact_id) DO NOTHING;
	WHEN 'snapshots' THEN
		INSERT INTO outpost_snapshot_ref (snapshot_id, tenant_id, sequence)
		VALUES (id, j->>'tenant_id', (j->>'sequence')::bigint) ON CONFLICT (snapshot_id) DO NOTHING;
	WHEN 'mirrors' THEN
		INSERT INTO outpost_mirror_ref (mirror_id, tenant_id)
		VALUES (id, j->>'tenant_id') ON CONFLICT (mirror_id) DO NOTHING;
	WHEN 'blocked_versions' THEN
		INSERT INTO outpost_blocked_ref (blocklist_id, tenant_id, product_id, blocked_version)
		VALUES (id, j->>'tenant_id', j->>'product_id', j->>'blocked_version') ON CONFLICT (blocklist_id) DO NOTHING;
	WHEN 'policies' THEN
		INSERT INTO outpost_policy_ref (policy_id, tenant_id, product_id)
		VALUES (id, j->>'tenant_id', j->>'product_id')
		ON CONFLICT (policy_id) DO UPDATE
			SET tenant_id = excluded.tenant_id, product_id = excluded.product_id;
	WHEN 'rollouts' THEN
		INSERT INTO outpost_rollout_ref (rollout_id, product_id, channel, release_id)
		VALUES (id, j->>'product_id', j->>'channel', j->>'release_id')
		ON CONFLICT (rollout_id) DO UPDATE
			SET product_id = excluded.product_id, channel = excluded.channel, release_id = excluded.release_id;
	END CASE;
	RETURN NULL;
END
$$;
CREATE TRIGGER outpost_project_catalog AFTER INSERT ON outpost_kv
	FOR EACH ROW WHEN (NEW.bucket IN ('releases', 'leases', 'artifacts', 'release_artifacts', 'policies',
		'blocked_versions', 'rollouts', 'snapshots', 'mirrors'))
	EXECUTE FUNCTION outpost_project_catalog();
CREATE TRIGGER outpost_project_catalog_update AFTER UPDATE ON outpost_kv
	FOR EACH ROW WHEN (NEW.bucket IN ('policies', 'rollouts') AND OLD.v IS DISTINCT FROM NEW.v)
	EXECUTE FUNCTION outpost_project_catalog();

-- outpost_check_update refuses a changed value the seed's rules forbid,
-- and one whose id is not its key, in the projected buckets whose
-- projection does not run on update.
CREATE FUNCTION outpost_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	o jsonb := convert_from(OLD.v, 'UTF8')::jsonb;
	n jsonb := convert_from(NEW.v, 'UTF8')::jsonb;
	f text := outpost_id_field(NEW.bucket);
BEGIN
	IF n->>f IS DISTINCT FROM o->>f THEN
		RAISE EXCEPTION 'outpost: row % of bucket % would hold % %', convert_from(NEW.k, 'UTF8'), NEW.bucket, f, n->>f
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
	CASE NEW.bucket
	WHEN 'leases' THEN
		IF (o->>'entitlement_id', o->>'tenant_id', o->>'subject_type', o->>'subject_id')
			IS DISTINCT FROM (n->>'entitlement_id', n->>'tenant_id', n->>'subject_type', n->>'subject_id') THEN
			RAISE EXCEPTION 'outpost: lease % cannot move to another entitlement, tenant or subject', o->>f
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
		IF coalesce(o->'released_at', 'null'::jsonb) <> 'null'::jsonb THEN
			RAISE EXCEPTION 'outpost: lease % was released and cannot change', o->>f
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
	WHEN 'releases' THEN
		-- Append-only: only revocation changes a release, once.
		IF o->>'status' <> 'ACTIVE' OR n->>'status' <> 'REVOKED'
			OR coalesce(n->'revoked_at', 'null'::jsonb) = 'null'::jsonb
			OR (o - 'status' - 'revoked_at') IS DISTINCT FROM (n - 'status' - 'revoked_at') THEN
			RAISE EXCEPTION 'outpost: release % is append-only: only its revocation may change it, once', o->>f
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
	WHEN 'release_artifacts', 'snapshots' THEN
		RAISE EXCEPTION 'outpost: % row % is immutable', NEW.bucket, o->>f
			USING ERRCODE = 'integrity_constraint_violation';
	WHEN 'artifacts' THEN
		IF (o - 'status' - 'verified_at') IS DISTINCT FROM (n - 'status' - 'verified_at') THEN
			RAISE EXCEPTION 'outpost: artifact % changes only by its verification', o->>f
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
	WHEN 'blocked_versions', 'mirrors' THEN
		IF (o->>'tenant_id', o->>'product_id', o->>'blocked_version')
			IS DISTINCT FROM (n->>'tenant_id', n->>'product_id', n->>'blocked_version') THEN
			RAISE EXCEPTION 'outpost: % row % cannot change what it names', NEW.bucket, o->>f
				USING ERRCODE = 'integrity_constraint_violation';
		END IF;
	END CASE;
	RETURN NEW;
END
$$;
CREATE TRIGGER outpost_check_update BEFORE UPDATE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket IN ('releases', 'leases', 'artifacts', 'release_artifacts',
		'blocked_versions', 'snapshots', 'mirrors') AND OLD.v IS DISTINCT FROM NEW.v)
	EXECUTE FUNCTION outpost_check_update();

-- A policy's versions are its history: never rewritten, never deleted.
CREATE FUNCTION outpost_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'outpost: policy versions are history (% refused)', TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER outpost_history_update BEFORE UPDATE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket = 'policy_versions'
		AND (OLD.v IS DISTINCT FROM NEW.v OR NEW.bucket <> OLD.bucket OR NEW.k <> OLD.k))
	EXECUTE FUNCTION outpost_history();
CREATE TRIGGER outpost_history_delete BEFORE DELETE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket = 'policy_versions')
	EXECUTE FUNCTION outpost_history();

-- Blocked versions are deleted by their API and snapshots by retention:
-- their projection goes with them.
CREATE FUNCTION outpost_unproject() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	IF OLD.bucket = 'snapshots' THEN
		DELETE FROM outpost_snapshot_ref WHERE snapshot_id = convert_from(OLD.k, 'UTF8');
	ELSE
		DELETE FROM outpost_blocked_ref WHERE blocklist_id = convert_from(OLD.k, 'UTF8');
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER outpost_unproject AFTER DELETE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket IN ('snapshots', 'blocked_versions'))
	EXECUTE FUNCTION outpost_unproject();

-- The rest are never deleted nor re-keyed; snapshots and blocked versions
-- are never re-keyed.
DROP TRIGGER outpost_keep_rows_delete ON outpost_kv;
CREATE TRIGGER outpost_keep_rows_delete BEFORE DELETE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket IN ('tenants', 'products', 'entitlements', 'seats',
		'releases', 'leases', 'artifacts', 'release_artifacts', 'policies', 'rollouts', 'mirrors'))
	EXECUTE FUNCTION outpost_keep_rows();
DROP TRIGGER outpost_keep_rows_update ON outpost_kv;
CREATE TRIGGER outpost_keep_rows_update BEFORE UPDATE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket IN ('tenants', 'products', 'entitlements', 'seats',
		'releases', 'leases', 'artifacts', 'release_artifacts', 'policies', 'blocked_versions',
		'rollouts', 'snapshots', 'mirrors')
		AND (OLD.bucket <> NEW.bucket OR OLD.k <> NEW.k))
	EXECUTE FUNCTION outpost_keep_rows();

-- The rows already stored, projected as a new write would project them:
-- a database that breaks a rule stops here, with the constraint's
-- message, and stays as it was. Rows of other buckets (counters, sealed
-- values, binary keys) are neither JSON nor UTF-8: the view filters
-- before it parses (OFFSET 0 keeps the planner from merging the two).
CREATE TEMPORARY VIEW outpost_stored AS
	SELECT bucket, convert_from(k, 'UTF8') AS id, convert_from(v, 'UTF8')::jsonb AS j
	FROM (SELECT bucket, k, v FROM outpost_kv
		WHERE bucket IN ('releases', 'leases', 'artifacts', 'release_artifacts', 'policies',
			'blocked_versions', 'rollouts', 'snapshots', 'mirrors')
		OFFSET 0) AS projected;
DO $$
DECLARE
	r record;
BEGIN
	SELECT bucket, id INTO r FROM outpost_stored WHERE j->>outpost_id_field(bucket) IS DISTINCT FROM id LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'outpost: row % of bucket % does not hold its own id', r.id, r.bucket
			USING ERRCODE = 'integrity_constraint_violation';
	END IF;
END
$$;
INSERT INTO outpost_artifact_ref (artifact_id)
	SELECT id FROM outpost_stored WHERE bucket = 'artifacts';
INSERT INTO outpost_release_ref (release_id, product_id, channel, version)
	SELECT id, j->>'product_id', j->>'channel', j->>'version' FROM outpost_stored WHERE bucket = 'releases';
INSERT INTO outpost_release_artifact_ref (release_artifact_id, release_id, artifact_id, platform, arch, installer_type)
	SELECT id, j->>'release_id', j->>'artifact_id', j->>'platform', j->>'arch', j->>'installer_type'
	FROM outpost_stored WHERE bucket = 'release_artifacts';
INSERT INTO outpost_lease_ref (lease_id, entitlement_id, tenant_id)
	SELECT id, j->>'entitlement_id', j->>'tenant_id' FROM outpost_stored WHERE bucket = 'leases';
INSERT INTO outpost_policy_ref (policy_id, tenant_id, product_id)
	SELECT id, j->>'tenant_id', j->>'product_id' FROM outpost_stored WHERE bucket = 'policies';
INSERT INTO outpost_blocked_ref (blocklist_id, tenant_id, product_id, blocked_version)
	SELECT id, j->>'tenant_id', j->>'product_id', j->>'blocked_version' FROM outpost_stored WHERE bucket = 'blocked_versions';
INSERT INTO outpost_rollout_ref (rollout_id, product_id, channel, release_id)
	SELECT id, j->>'product_id', j->>'channel', j->>'release_id' FROM outpost_stored WHERE bucket = 'rollouts';
INSERT INTO outpost_snapshot_ref (snapshot_id, tenant_id, sequence)
	SELECT id, j->>'tenant_id', (j->>'sequence')::bigint FROM outpost_stored WHERE bucket = 'snapshots';
INSERT INTO outpost_mirror_ref (mirror_id, tenant_id)
	SELECT id, j->>'tenant_id' FROM outpost_stored WHERE bucket = 'mirrors';
DROP VIEW outpost_stored;
SET CONSTRAINTS ALL IMMEDIATE;
