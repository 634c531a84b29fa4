-- Projection tables rendered by schema/ddl.py for postgres; do not edit.
CREATE TABLE IF NOT EXISTS crm_people (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    full_name text,
    primary_phone text,
    email text,
    city text,
    country text,
    nationality text,
    segment text,
    source text,
    account_id text,
    household_id text,
    tags jsonb,
    notes text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_people_owner ON crm_people (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_accounts (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    name text,
    kind text,
    notes text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_accounts_owner ON crm_accounts (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_households (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    name text,
    primary_person_id text,
    city text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_households_owner ON crm_households (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_relationships (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    related_person_id text,
    kind text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_relationships_owner ON crm_relationships (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_leads (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    stage text,
    source text,
    project_id text,
    budget_min double precision,
    budget_max double precision,
    currency text,
    timeline text,
    last_qd bigint,
    tags jsonb,
    notes text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_leads_owner ON crm_leads (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_opportunities (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    lead_id text,
    person_id text,
    unit_id text,
    stage text,
    value double precision,
    currency text,
    probability double precision,
    expected_close date,
    notes text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_opportunities_owner ON crm_opportunities (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_property_interests (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    project_id text,
    unit_id text,
    configuration text,
    level bigint,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_property_interests_owner ON crm_property_interests (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_stage_history (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    lead_id text,
    opportunity_id text,
    from_stage text,
    to_stage text,
    changed_by text,
    changed_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_stage_history_owner ON crm_stage_history (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_projects (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    name text,
    city text,
    developer text,
    status text,
    description text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_projects_owner ON inventory_projects (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_units (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    project_id text,
    unit_no text,
    configuration text,
    floor bigint,
    area_sqft double precision,
    price double precision,
    currency text,
    status text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_units_owner ON inventory_units (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_interactions (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    lead_id text,
    kind text,
    channel text,
    direction text,
    occurred_at timestamptz,
    duration_s bigint,
    summary text,
    body text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_interactions_owner ON crm_interactions (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_tasks (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    title text,
    person_id text,
    lead_id text,
    assignee_id text,
    due_at timestamptz,
    status text,
    priority bigint,
    notes text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_tasks_owner ON crm_tasks (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_qd_scores (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    lead_id text,
    session_id text,
    score bigint,
    source text,
    scored_at timestamptz,
    signals jsonb,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_qd_scores_owner ON intel_qd_scores (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_extracted_facts (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    interaction_id text,
    kind text,
    value text,
    confidence double precision,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_extracted_facts_owner ON intel_extracted_facts (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_biometric_consent (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    lead_id text,
    session_id text,
    scope text,
    method text,
    granted_at timestamptz,
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_biometric_consent_owner ON intel_biometric_consent (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_perception_sessions (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    person_id text,
    lead_id text,
    consent_id text,
    asset_id text,
    started_at timestamptz,
    completed_at timestamptz,
    qd_final bigint,
    frames_seen bigint,
    signals jsonb,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_perception_sessions_owner ON intel_perception_sessions (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS oracle_canvas_pages (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    title text,
    components jsonb,
    narrative text,
    sharing text,
    editors jsonb,
    viewers jsonb,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS oracle_canvas_pages_owner ON oracle_canvas_pages (tenant_id, owner_id);
