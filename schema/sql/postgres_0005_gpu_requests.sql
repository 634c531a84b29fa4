-- GPU requests written on devices (edge-first GPU jobs), rendered by schema/ddl.py.
CREATE TABLE IF NOT EXISTS intel_gpu_requests (
    tenant_id text NOT NULL,
    id text,
    owner_id text,
    team_id text,
    created_at timestamptz,
    deleted boolean,
    kind text,
    question text,
    room_type text,
    style text,
    photo text,
    requested_at timestamptz,
    status text,
    progress double precision,
    job_id text,
    answer text,
    result_url text,
    error text,
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX IF NOT EXISTS intel_gpu_requests_owner ON intel_gpu_requests (tenant_id, owner_id);
-- The hub's request watcher looks for requests that have not finished.
CREATE INDEX IF NOT EXISTS intel_gpu_requests_open ON intel_gpu_requests (status)
    WHERE status IN ('requested', 'queued', 'running');
