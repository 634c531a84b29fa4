-- The audit log as the WebOS reads it: filtered by user, action, target and time, newest first.
-- target: what an action was done to when it is not a record (a user, a device, an email);
--   record writes keep naming their record in guid.
ALTER TABLE hub_audit ADD COLUMN IF NOT EXISTS target text;
CREATE INDEX IF NOT EXISTS hub_audit_recent ON hub_audit (tenant_id, audit_id DESC);
CREATE INDEX IF NOT EXISTS hub_audit_by_user ON hub_audit (tenant_id, user_id, audit_id DESC);
CREATE INDEX IF NOT EXISTS hub_audit_by_target ON hub_audit (tenant_id, target, audit_id DESC);
CREATE INDEX IF NOT EXISTS hub_audit_by_guid ON hub_audit (tenant_id, guid, audit_id DESC);
CREATE INDEX IF NOT EXISTS hub_audit_by_at ON hub_audit (tenant_id, at DESC);
