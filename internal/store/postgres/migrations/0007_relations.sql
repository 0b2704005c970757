-- The seed's model as relations, for reading (issue 18): one view per
-- entity of the seed's data model, its columns typed (text, timestamptz,
-- bigint, integer, numeric, boolean, jsonb), over the rows of outpost_kv
-- that store/kv keeps. Reporting, an operator's SQL and BI tools read
-- these, never outpost_kv: the views leave out what is secret or
-- internal (mirror credentials, API tokens, idempotency answers, keys,
-- counters, indexes). A view reads with its owner's rights, so a role
-- granted SELECT on the views and nothing else reads the model without
-- seeing outpost_kv (docs/architecture.md); security_barrier keeps a
-- reader's own functions from running on rows of other buckets. The
-- views cost writes nothing.
CREATE VIEW outpost_tenants WITH (security_barrier) AS
	SELECT j->>'tenant_id' AS tenant_id, j->>'name' AS name, j->>'status' AS status,
		(j->>'created_at')::timestamptz AS created_at, j->'metadata' AS metadata
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'tenants';
CREATE VIEW outpost_products WITH (security_barrier) AS
	SELECT j->>'product_id' AS product_id, j->>'name' AS name, j->>'distribution' AS distribution,
		(j->>'created_at')::timestamptz AS created_at, j->'metadata' AS metadata
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'products';
CREATE VIEW outpost_releases WITH (security_barrier) AS
	SELECT j->>'release_id' AS release_id, j->>'product_id' AS product_id, j->>'channel' AS channel,
		j->>'version' AS version, (j->>'published_at')::timestamptz AS published_at,
		(j->>'revoked_at')::timestamptz AS revoked_at, j->>'status' AS status, j->'metadata' AS metadata
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'releases';
CREATE VIEW outpost_release_artifacts WITH (security_barrier) AS
	SELECT j->>'release_artifact_id' AS release_artifact_id, j->>'release_id' AS release_id,
		j->>'artifact_id' AS artifact_id, j->>'platform' AS platform, j->>'arch' AS arch,
		j->>'installer_type' AS installer_type, (j->>'requires_admin')::boolean AS requires_admin
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'release_artifacts';
CREATE VIEW outpost_artifacts WITH (security_barrier) AS
	SELECT j->>'artifact_id' AS artifact_id, j->>'source_type' AS source_type, j->>'sha256' AS sha256,
		(j->>'size_bytes')::bigint AS size_bytes, j->>'storage_path' AS storage_path,
		j->>'external_url' AS external_url, j->>'status' AS status,
		(j->>'verified_at')::timestamptz AS verified_at, (j->>'created_at')::timestamptz AS created_at
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'artifacts';
-- A policy's current version; outpost_policy_versions holds them all.
CREATE VIEW outpost_policies WITH (security_barrier) AS
	SELECT j->>'policy_id' AS policy_id, j->>'tenant_id' AS tenant_id, j->>'product_id' AS product_id,
		j->>'channel' AS channel, j->>'action' AS action, j->'conditions' AS conditions,
		(j->>'priority')::integer AS priority, (j->>'version')::integer AS version,
		(j->>'created_at')::timestamptz AS created_at, (j->>'updated_at')::timestamptz AS updated_at
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'policies';
CREATE VIEW outpost_policy_versions WITH (security_barrier) AS
	SELECT j->>'policy_id' AS policy_id, (j->>'version')::integer AS version, j->>'tenant_id' AS tenant_id,
		j->>'product_id' AS product_id, j->>'channel' AS channel, j->>'action' AS action,
		j->'conditions' AS conditions, (j->>'priority')::integer AS priority,
		(j->>'created_at')::timestamptz AS created_at, (j->>'updated_at')::timestamptz AS updated_at
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'policy_versions';
CREATE VIEW outpost_blocked_versions WITH (security_barrier) AS
	SELECT j->>'blocklist_id' AS blocklist_id, j->>'tenant_id' AS tenant_id, j->>'product_id' AS product_id,
		j->>'blocked_version' AS blocked_version, j->>'reason' AS reason,
		(j->>'created_at')::timestamptz AS created_at
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'blocked_versions';
CREATE VIEW outpost_rollouts WITH (security_barrier) AS
	SELECT j->>'rollout_id' AS rollout_id, j->>'product_id' AS product_id, j->>'channel' AS channel,
		j->>'release_id' AS release_id, (j->>'percentage')::numeric AS percentage, j->>'status' AS status,
		(j->>'created_at')::timestamptz AS created_at, (j->>'updated_at')::timestamptz AS updated_at,
		j->'schedule' AS schedule, j->'health_gate' AS health_gate
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'rollouts';
CREATE VIEW outpost_entitlements WITH (security_barrier) AS
	SELECT j->>'entitlement_id' AS entitlement_id, j->>'tenant_id' AS tenant_id, j->>'product_id' AS product_id,
		j->'policy_json' AS policy_json, (j->>'starts_at')::timestamptz AS starts_at,
		(j->>'ends_at')::timestamptz AS ends_at, (j->>'created_at')::timestamptz AS created_at,
		(j->>'updated_at')::timestamptz AS updated_at
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'entitlements';
CREATE VIEW outpost_leases WITH (security_barrier) AS
	SELECT j->>'lease_id' AS lease_id, j->>'entitlement_id' AS entitlement_id, j->>'tenant_id' AS tenant_id,
		j->>'subject_type' AS subject_type, j->>'subject_id' AS subject_id,
		(j->>'issued_at')::timestamptz AS issued_at, (j->>'expires_at')::timestamptz AS expires_at,
		(j->>'released_at')::timestamptz AS released_at, j->>'token_hash' AS token_hash
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'leases';
CREATE VIEW outpost_seat_assignments WITH (security_barrier) AS
	SELECT j->>'seat_assignment_id' AS seat_assignment_id, j->>'entitlement_id' AS entitlement_id,
		j->>'subject_type' AS subject_type, j->>'subject_id' AS subject_id,
		(j->>'assigned_at')::timestamptz AS assigned_at, j->>'assigned_by' AS assigned_by,
		(j->>'revoked_at')::timestamptz AS revoked_at, j->>'revoked_by' AS revoked_by
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'seats';
-- A snapshot's signed envelope is served by the API (and lives, encoded,
-- in its own bucket); hash is its sha256.
CREATE VIEW outpost_snapshots WITH (security_barrier) AS
	SELECT j->>'snapshot_id' AS snapshot_id, j->>'tenant_id' AS tenant_id, (j->>'sequence')::bigint AS sequence,
		(j->>'created_at')::timestamptz AS created_at, (j->>'expires_at')::timestamptz AS expires_at,
		j->>'hash' AS hash
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'snapshots';
-- No credential: not its hash, not its ciphertext.
CREATE VIEW outpost_mirrors WITH (security_barrier) AS
	SELECT j->>'mirror_id' AS mirror_id, j->>'tenant_id' AS tenant_id, j->>'name' AS name,
		j->>'vendor_url' AS vendor_url, j->'allowed_channels' AS allowed_channels, j->>'status' AS status,
		(j->>'last_sync_at')::timestamptz AS last_sync_at, nullif(j->>'last_snapshot_id', '') AS last_snapshot_id,
		(j->>'created_at')::timestamptz AS created_at, (j->>'updated_at')::timestamptz AS updated_at
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'mirrors';
-- The chained events, in chain order (events of shared writes not yet
-- chained are not shown; the store chains them before it reads the log).
CREATE VIEW outpost_audit_events WITH (security_barrier) AS
	SELECT j->>'event_id' AS event_id, (j->>'seq')::bigint AS seq, nullif(j->>'tenant_id', '') AS tenant_id,
		j->>'actor_type' AS actor_type, j->>'actor_id' AS actor_id, j->>'event_type' AS event_type,
		j->'payload' AS payload, (j->>'created_at')::timestamptz AS created_at,
		j->>'prev_hash' AS prev_hash, j->>'hash' AS hash
	FROM outpost_kv, LATERAL (SELECT convert_from(v, 'UTF8')::jsonb) AS r(j)
	WHERE bucket = 'audit';
