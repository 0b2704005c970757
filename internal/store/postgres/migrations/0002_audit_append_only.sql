-- Audit events are append-only: store/kv never rewrites or deletes a row
-- of bucket 'audit' (retention prunes snapshots and TUF versions, never
-- events), so the database refuses it too, whoever connects. A chain
-- edited behind the store's back would be caught by audit verification;
-- this makes the edit fail in the first place.
CREATE OR REPLACE FUNCTION outpost_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'outpost: audit events are append-only (% refused)', TG_OP
		USING ERRCODE = 'integrity_constraint_violation';
END
$$;
DROP TRIGGER IF EXISTS outpost_audit_no_update ON outpost_kv;
CREATE TRIGGER outpost_audit_no_update BEFORE UPDATE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket = 'audit' OR NEW.bucket = 'audit')
	EXECUTE FUNCTION outpost_audit_append_only();
DROP TRIGGER IF EXISTS outpost_audit_no_delete ON outpost_kv;
CREATE TRIGGER outpost_audit_no_delete BEFORE DELETE ON outpost_kv
	FOR EACH ROW WHEN (OLD.bucket = 'audit')
	EXECUTE FUNCTION outpost_audit_append_only();
