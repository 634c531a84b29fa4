-- Accounts that can be managed and credentials that can be revoked.
-- token_version: access and refresh tokens carry it; bumping it (logout, password change,
--   disable, role change) ends them all at once.
-- scope_seq: the tenant's sequence when the user's role or team last changed; a device whose
--   cursor is not past it resyncs its scope (removals for what it may no longer read).
ALTER TABLE hub_users ADD COLUMN IF NOT EXISTS token_version integer NOT NULL DEFAULT 0;
ALTER TABLE hub_users ADD COLUMN IF NOT EXISTS scope_seq bigint NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS hub_refresh_tokens (
    tenant_id text NOT NULL REFERENCES hub_tenants,
    token_hash text NOT NULL,
    user_id text NOT NULL,
    token_version integer NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE UNIQUE INDEX IF NOT EXISTS hub_refresh_tokens_hash ON hub_refresh_tokens (token_hash);

-- Failed logins per account (``account:<email>``) and per source address (``address:<ip>``).
CREATE TABLE IF NOT EXISTS hub_login_failures (
    key text PRIMARY KEY,
    failures integer NOT NULL,
    window_start timestamptz NOT NULL
);
