-- Mobile edge: communication events, transcript segments, memory facts, calendar events and
-- insights of a broker's leads (projections of their CRDT documents).
CREATE TABLE IF NOT EXISTS mobile_comm_events (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    lead_id text,
    person_id text,
    channel text,
    direction text,
    occurred_at timestamptz,
    duration_s bigint,
    source text,
    summary text,
    body text,
    recording_ref text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_comm_events_owner ON mobile_comm_events (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_transcript_segments (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    event_id text,
    lead_id text,
    position bigint,
    speaker text,
    start_ms bigint,
    end_ms bigint,
    text text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_transcript_segments_owner ON mobile_transcript_segments (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_memory_facts (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    lead_id text,
    person_id text,
    event_id text,
    category text,
    fact text,
    confidence double precision,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_memory_facts_owner ON mobile_memory_facts (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_calendar_events (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    title text,
    kind text,
    starts_at timestamptz,
    duration_min bigint,
    location text,
    lead_id text,
    person_id text,
    status text,
    notes text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_calendar_events_owner ON mobile_calendar_events (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS mobile_insights (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    lead_id text,
    kind text,
    title text,
    body text,
    priority bigint,
    status text,
    decided_by text,
    decided_at timestamptz,
    decision_note text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS mobile_insights_owner ON mobile_insights (tenant_id, owner_id);
CREATE INDEX IF NOT EXISTS mobile_comm_events_lead ON mobile_comm_events (tenant_id, lead_id, occurred_at);
CREATE INDEX IF NOT EXISTS mobile_transcript_segments_event ON mobile_transcript_segments (tenant_id, event_id, position);
CREATE INDEX IF NOT EXISTS mobile_memory_facts_lead ON mobile_memory_facts (tenant_id, lead_id);
CREATE INDEX IF NOT EXISTS mobile_calendar_events_start ON mobile_calendar_events (tenant_id, owner_id, starts_at);
CREATE INDEX IF NOT EXISTS mobile_insights_lead ON mobile_insights (tenant_id, lead_id, status);
