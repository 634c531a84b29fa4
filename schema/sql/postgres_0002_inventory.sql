-- Inventory: towers, unit holds (one document per unit), media references; units gain
-- their tower and facing.

CREATE TABLE IF NOT EXISTS inventory_towers (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    project_id text,
    name text,
    floors bigint,
    handover date,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_towers_owner ON inventory_towers (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_unit_holds (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    unit_id text,
    project_id text,
    holder_id text,
    claims jsonb,
    lead_id text,
    person_id text,
    held_at timestamptz,
    expires_at timestamptz,
    released_at timestamptz,
    note text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_unit_holds_owner ON inventory_unit_holds (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_media (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    unit_id text,
    project_id text,
    kind text,
    uri text,
    caption text,
    position bigint,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_media_owner ON inventory_media (tenant_id, owner_id);

ALTER TABLE inventory_units ADD COLUMN IF NOT EXISTS tower_id text;
ALTER TABLE inventory_units ADD COLUMN IF NOT EXISTS facing text;
CREATE INDEX IF NOT EXISTS inventory_units_project ON inventory_units (tenant_id, project_id);
