-- Projection tables rendered by schema/ddl.py for sqlite; do not edit.
CREATE TABLE IF NOT EXISTS crm_people (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    full_name TEXT,
    primary_phone TEXT,
    email TEXT,
    city TEXT,
    country TEXT,
    nationality TEXT,
    segment TEXT,
    source TEXT,
    account_id TEXT,
    household_id TEXT,
    tags TEXT,
    notes TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_people_owner ON crm_people (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_accounts (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    name TEXT,
    kind TEXT,
    notes TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_accounts_owner ON crm_accounts (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_households (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    name TEXT,
    primary_person_id TEXT,
    city TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_households_owner ON crm_households (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_relationships (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    related_person_id TEXT,
    kind TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_relationships_owner ON crm_relationships (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_leads (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    stage TEXT,
    source TEXT,
    project_id TEXT,
    budget_min REAL,
    budget_max REAL,
    currency TEXT,
    timeline TEXT,
    last_qd INTEGER,
    tags TEXT,
    notes TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_leads_owner ON crm_leads (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_opportunities (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    lead_id TEXT,
    person_id TEXT,
    unit_id TEXT,
    stage TEXT,
    value REAL,
    currency TEXT,
    probability REAL,
    expected_close TEXT,
    notes TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_opportunities_owner ON crm_opportunities (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_property_interests (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    project_id TEXT,
    unit_id TEXT,
    configuration TEXT,
    level INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_property_interests_owner ON crm_property_interests (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_stage_history (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    lead_id TEXT,
    opportunity_id TEXT,
    from_stage TEXT,
    to_stage TEXT,
    changed_by TEXT,
    changed_at TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_stage_history_owner ON crm_stage_history (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_projects (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    name TEXT,
    city TEXT,
    developer TEXT,
    status TEXT,
    description TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_projects_owner ON inventory_projects (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_units (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    project_id TEXT,
    unit_no TEXT,
    configuration TEXT,
    floor INTEGER,
    area_sqft REAL,
    price REAL,
    currency TEXT,
    status TEXT,
    tower_id TEXT,
    facing TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_units_owner ON inventory_units (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_interactions (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    lead_id TEXT,
    kind TEXT,
    channel TEXT,
    direction TEXT,
    occurred_at TEXT,
    duration_s INTEGER,
    summary TEXT,
    body TEXT,
    thread_id TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_interactions_owner ON crm_interactions (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS crm_tasks (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    title TEXT,
    person_id TEXT,
    lead_id TEXT,
    assignee_id TEXT,
    due_at TEXT,
    status TEXT,
    priority INTEGER,
    notes TEXT,
    thread_id TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS crm_tasks_owner ON crm_tasks (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_qd_scores (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    lead_id TEXT,
    session_id TEXT,
    score INTEGER,
    source TEXT,
    scored_at TEXT,
    signals TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_qd_scores_owner ON intel_qd_scores (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_extracted_facts (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    interaction_id TEXT,
    kind TEXT,
    value TEXT,
    confidence REAL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_extracted_facts_owner ON intel_extracted_facts (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_biometric_consent (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    lead_id TEXT,
    session_id TEXT,
    scope TEXT,
    method TEXT,
    granted_at TEXT,
    revoked_at TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_biometric_consent_owner ON intel_biometric_consent (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_perception_sessions (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    person_id TEXT,
    lead_id TEXT,
    consent_id TEXT,
    asset_id TEXT,
    started_at TEXT,
    completed_at TEXT,
    qd_final INTEGER,
    frames_seen INTEGER,
    signals TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_perception_sessions_owner ON intel_perception_sessions (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS oracle_canvas_pages (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    title TEXT,
    components TEXT,
    narrative TEXT,
    sharing TEXT,
    editors TEXT,
    viewers TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS oracle_canvas_pages_owner ON oracle_canvas_pages (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_towers (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    project_id TEXT,
    name TEXT,
    floors INTEGER,
    handover TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_towers_owner ON inventory_towers (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_unit_holds (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    unit_id TEXT,
    project_id TEXT,
    holder_id TEXT,
    claims TEXT,
    lead_id TEXT,
    person_id TEXT,
    held_at TEXT,
    expires_at TEXT,
    released_at TEXT,
    note TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_unit_holds_owner ON inventory_unit_holds (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS inventory_media (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    unit_id TEXT,
    project_id TEXT,
    kind TEXT,
    uri TEXT,
    caption TEXT,
    position INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS inventory_media_owner ON inventory_media (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS comms_threads (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    channel_id TEXT,
    phone TEXT,
    display_name TEXT,
    person_id TEXT,
    archived INTEGER,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS comms_threads_owner ON comms_threads (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS comms_messages (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    thread_id TEXT,
    direction TEXT,
    body TEXT,
    media_url TEXT,
    media_type TEXT,
    media_seconds INTEGER,
    status TEXT,
    provider_message_id TEXT,
    error TEXT,
    occurred_at TEXT,
    author_id TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS comms_messages_owner ON comms_messages (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_comm_events (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    lead_id TEXT,
    person_id TEXT,
    channel TEXT,
    direction TEXT,
    occurred_at TEXT,
    duration_s INTEGER,
    source TEXT,
    summary TEXT,
    body TEXT,
    recording_ref TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_comm_events_owner ON mobile_comm_events (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_transcript_segments (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    event_id TEXT,
    lead_id TEXT,
    position INTEGER,
    speaker TEXT,
    start_ms INTEGER,
    end_ms INTEGER,
    text TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_transcript_segments_owner ON mobile_transcript_segments (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_memory_facts (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    lead_id TEXT,
    person_id TEXT,
    event_id TEXT,
    category TEXT,
    fact TEXT,
    confidence REAL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_memory_facts_owner ON mobile_memory_facts (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_calendar_events (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    title TEXT,
    kind TEXT,
    starts_at TEXT,
    duration_min INTEGER,
    location TEXT,
    lead_id TEXT,
    person_id TEXT,
    status TEXT,
    notes TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_calendar_events_owner ON mobile_calendar_events (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_insights (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    lead_id TEXT,
    kind TEXT,
    title TEXT,
    body TEXT,
    priority INTEGER,
    status TEXT,
    decided_by TEXT,
    decided_at TEXT,
    decision_note TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_insights_owner ON mobile_insights (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS intel_gpu_requests (
    tenant_id text NOT NULL,
    id TEXT,
    owner_id TEXT,
    team_id TEXT,
    created_at TEXT,
    deleted INTEGER,
    kind TEXT,
    question TEXT,
    room_type TEXT,
    style TEXT,
    photo TEXT,
    requested_at TEXT,
    status TEXT,
    progress REAL,
    job_id TEXT,
    answer TEXT,
    result_url TEXT,
    error TEXT,
    finished_at TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_gpu_requests_owner ON intel_gpu_requests (tenant_id, owner_id);
