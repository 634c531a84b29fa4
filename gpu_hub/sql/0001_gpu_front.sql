-- The GPU front: LLM token usage, durable jobs (LLM batches, Dream Weaver renders) and the mode.
CREATE TABLE IF NOT EXISTS gpu_llm_usage (
    tenant_id text NOT NULL,
    id text NOT NULL,
    user_id text,
    model text NOT NULL,
    purpose text NOT NULL,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    attempts integer NOT NULL,
    latency_ms integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE IF NOT EXISTS gpu_jobs (
    tenant_id text NOT NULL,
    id text NOT NULL,
    kind text NOT NULL,
    user_id text NOT NULL,
    idempotency_key text,
    status text NOT NULL DEFAULT 'queued',
    progress double precision NOT NULL DEFAULT 0,
    request jsonb NOT NULL,
    result jsonb,
    error text,
    worker text,
    attempts integer NOT NULL DEFAULT 0,
    lease_until timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS gpu_jobs_idempotency
    ON gpu_jobs (tenant_id, kind, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS gpu_jobs_open ON gpu_jobs (status, created_at)
    WHERE status IN ('queued', 'running');

CREATE TABLE IF NOT EXISTS gpu_llm_results (
    tenant_id text NOT NULL,
    job_id text NOT NULL,
    item integer NOT NULL,
    status text NOT NULL,
    output text,
    error text,
    prompt_tokens integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, job_id, item)
);

CREATE TABLE IF NOT EXISTS gpu_state (
    key text PRIMARY KEY,
    value jsonb NOT NULL
);
