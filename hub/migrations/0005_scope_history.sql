-- Every scope change of a document: who could read it before the change at ``seq``. A reader
-- who could read it at any point after their cursor, and no longer can, gets a removal, however
-- many reassignments happened while they were offline.
CREATE TABLE IF NOT EXISTS hub_scope_history (
    tenant_id text NOT NULL REFERENCES hub_tenants,
    guid text NOT NULL,
    seq bigint NOT NULL,
    collection text NOT NULL,
    owner_id text,
    team_id text,
    readers text[],
    PRIMARY KEY (tenant_id, guid, seq)
);
CREATE INDEX IF NOT EXISTS hub_scope_history_seq ON hub_scope_history (tenant_id, seq);
