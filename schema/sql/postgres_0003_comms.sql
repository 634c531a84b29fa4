-- Comms: conversations and their messages (tables rendered by schema.ddl.render_table),
-- and the thread a task or a note was made from.
ALTER TABLE crm_tasks ADD COLUMN IF NOT EXISTS thread_id text;
ALTER TABLE crm_interactions ADD COLUMN IF NOT EXISTS thread_id text;

CREATE TABLE IF NOT EXISTS comms_threads (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    channel_id text,
    phone text,
    display_name text,
    person_id text,
    archived boolean,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS comms_threads_owner ON comms_threads (tenant_id, owner_id);

CREATE TABLE IF NOT EXISTS comms_messages (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    thread_id text,
    direction text,
    body text,
    media_url text,
    media_type text,
    media_seconds bigint,
    status text,
    provider_message_id text,
    error text,
    occurred_at timestamptz,
    author_id text,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS comms_messages_owner ON comms_messages (tenant_id, owner_id);

CREATE INDEX IF NOT EXISTS comms_messages_thread ON comms_messages (tenant_id, thread_id, occurred_at);
CREATE INDEX IF NOT EXISTS comms_messages_queued ON comms_messages (status) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS comms_messages_provider_id ON comms_messages (tenant_id, provider_message_id);
CREATE INDEX IF NOT EXISTS comms_threads_phone ON comms_threads (tenant_id, channel_id, phone);
