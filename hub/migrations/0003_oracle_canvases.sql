-- Oracle canvases: named revisions, forks with their fork point, merge requests.

CREATE TABLE IF NOT EXISTS oracle_canvas_revisions (
    tenant_id text NOT NULL,
    revision_id text NOT NULL,
    page_id text NOT NULL,
    name text NOT NULL,
    content jsonb NOT NULL,
    state bytea NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, revision_id)
);
CREATE INDEX IF NOT EXISTS oracle_canvas_revisions_page
    ON oracle_canvas_revisions (tenant_id, page_id, created_at);

CREATE TABLE IF NOT EXISTS oracle_canvas_forks (
    tenant_id text NOT NULL,
    fork_id text NOT NULL,
    parent_id text NOT NULL,
    fork_point jsonb NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, fork_id)
);
CREATE INDEX IF NOT EXISTS oracle_canvas_forks_parent ON oracle_canvas_forks (tenant_id, parent_id);

CREATE TABLE IF NOT EXISTS oracle_merge_requests (
    tenant_id text NOT NULL,
    mr_id text NOT NULL,
    fork_id text NOT NULL,
    parent_id text NOT NULL,
    title text NOT NULL,
    status text NOT NULL DEFAULT 'open',
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    reviewed_by text,
    reviewed_at timestamptz,
    review_comment text,
    merged_seq bigint,
    PRIMARY KEY (tenant_id, mr_id)
);
CREATE INDEX IF NOT EXISTS oracle_merge_requests_parent
    ON oracle_merge_requests (tenant_id, parent_id, status);
