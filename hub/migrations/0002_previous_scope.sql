-- Who could read a document before its last scope change (reassignment), so devices of the
-- previous owner are told to drop it.
ALTER TABLE hub_documents ADD COLUMN IF NOT EXISTS prev_owner_id text;
ALTER TABLE hub_documents ADD COLUMN IF NOT EXISTS prev_team_id text;
