-- Lean commits: the log row is the record of truth, the push receipt and the audit entry of a
-- sync write. A commit writes one log row per update (and each document and projection row once
-- per transaction) instead of a log, a receipt and an audit row per update.

-- The device's update id lives on its log row; the unique key is the exactly-once guarantee.
ALTER TABLE hub_updates ADD COLUMN IF NOT EXISTS update_id text;
-- The row's place in the audit log: ids from hub_audit's own sequence, so log rows and the other
-- audit entries page together newest first. NULL on rows written before this migration (their
-- audit entries are the hub_audit rows written then).
ALTER TABLE hub_updates ADD COLUMN IF NOT EXISTS audit_id bigint;
ALTER TABLE hub_updates ALTER COLUMN audit_id SET DEFAULT nextval('hub_audit_audit_id_seq');

-- Committed receipts move onto their log rows.
UPDATE hub_updates u SET update_id = r.update_id FROM hub_push_receipts r
WHERE r.seq IS NOT NULL AND u.tenant_id = r.tenant_id AND u.seq = r.seq
  AND u.device_id IS NOT DISTINCT FROM r.device_id;
-- A receipt whose log row compaction deleted comes back as a compacted log row (empty data,
-- below the horizon, never read as an update): what compaction leaves from now on.
INSERT INTO hub_updates (tenant_id, seq, guid, data, device_id, update_id, audit_id)
SELECT r.tenant_id, r.seq, r.guid, ''::bytea, r.device_id, r.update_id, NULL
FROM hub_push_receipts r
WHERE r.seq IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM hub_updates u WHERE u.tenant_id = r.tenant_id AND u.seq = r.seq);

CREATE UNIQUE INDEX IF NOT EXISTS hub_updates_receipt ON hub_updates (tenant_id, device_id, update_id)
WHERE update_id IS NOT NULL;

-- What is left are refusals: an update id refused for good keeps its refusal here (rare, and
-- never a log row: a refused update has no sequence and no place in the log).
DELETE FROM hub_push_receipts WHERE seq IS NOT NULL;
ALTER TABLE hub_push_receipts DROP COLUMN seq;
ALTER TABLE hub_push_receipts RENAME TO hub_refusals;
ALTER TABLE hub_refusals ALTER COLUMN reason SET NOT NULL;
ALTER TABLE hub_refusals ALTER COLUMN message SET NOT NULL;
ALTER INDEX IF EXISTS hub_push_receipts_pkey RENAME TO hub_refusals_pkey;
