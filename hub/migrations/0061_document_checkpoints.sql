-- A document's stored state is a checkpoint: exact (at updated_seq) while state_seq is NULL,
-- else the state as of state_seq, to which the document's log rows after it (its tail, tail_rows
-- of them, up to updated_seq) are applied on read. A commit appends log rows and writes the state
-- again only every so many rows, so what an update costs does not grow with the document.
ALTER TABLE hub_documents ADD COLUMN IF NOT EXISTS state_seq bigint;
ALTER TABLE hub_documents ADD COLUMN IF NOT EXISTS tail_rows integer NOT NULL DEFAULT 0;
-- A document's log rows in order (its tail, and the gate's catch-up).
CREATE INDEX IF NOT EXISTS hub_updates_document ON hub_updates (tenant_id, guid, seq);
