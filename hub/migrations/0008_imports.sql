-- Import batches (inventory and CRM CSV uploads) with their row errors, and the proposals of a
-- CRM import (new person, merge into an existing one, conflict) with each one's review.
CREATE TABLE IF NOT EXISTS hub_import_batches (
    tenant_id text NOT NULL,
    batch_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('inventory', 'crm')),
    filename text NOT NULL,
    status text NOT NULL CHECK (status IN ('validated', 'refused', 'proposed', 'committed')),
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    committed_by text,
    committed_at timestamptz,
    row_count integer NOT NULL,
    errors jsonb NOT NULL DEFAULT '[]',
    summary jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, batch_id)
);
CREATE INDEX IF NOT EXISTS hub_import_batches_recent
    ON hub_import_batches (tenant_id, kind, created_at DESC);

CREATE TABLE IF NOT EXISTS hub_import_proposals (
    tenant_id text NOT NULL,
    batch_id text NOT NULL,
    row_no integer NOT NULL,
    action text NOT NULL CHECK (action IN ('create', 'merge', 'conflict')),
    person_id text,
    candidates jsonb NOT NULL DEFAULT '[]',
    fields jsonb NOT NULL,
    changes jsonb NOT NULL DEFAULT '{}',
    decision text NOT NULL DEFAULT 'pending'
        CHECK (decision IN ('pending', 'accepted', 'rejected')),
    reviewed_by text,
    reviewed_at timestamptz,
    committed_id text,
    PRIMARY KEY (tenant_id, batch_id, row_no),
    FOREIGN KEY (tenant_id, batch_id) REFERENCES hub_import_batches (tenant_id, batch_id)
        ON DELETE CASCADE
);
