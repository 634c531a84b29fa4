-- The hub's own tables: tenants, auth, devices, the update log, documents, receipts, audit.
-- Every table leads with tenant_id in its key (Citus distribution column), except the two small
-- lookup tables used before a tenant is known (hub_settings, and the email/code indexes).

CREATE TABLE IF NOT EXISTS hub_settings (
    key text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS hub_tenants (
    tenant_id text PRIMARY KEY,
    name text NOT NULL,
    last_seq bigint NOT NULL DEFAULT 0,
    horizon bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS hub_users (
    tenant_id text NOT NULL REFERENCES hub_tenants,
    user_id text NOT NULL,
    email text NOT NULL,
    full_name text NOT NULL,
    password_hash text NOT NULL,
    role text NOT NULL,
    team_id text,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    UNIQUE (tenant_id, email)
);
CREATE INDEX IF NOT EXISTS hub_users_email ON hub_users (lower(email));

CREATE TABLE IF NOT EXISTS hub_devices (
    tenant_id text NOT NULL REFERENCES hub_tenants,
    device_id text NOT NULL,
    user_id text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    public_key bytea NOT NULL,
    status text NOT NULL DEFAULT 'active',
    paired_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz,
    cursor bigint NOT NULL DEFAULT 0,
    revoked_at timestamptz,
    offences integer NOT NULL DEFAULT 0,
    blocked_reason text,
    PRIMARY KEY (tenant_id, device_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS hub_devices_device_id ON hub_devices (device_id);

CREATE TABLE IF NOT EXISTS hub_pairing_codes (
    tenant_id text NOT NULL REFERENCES hub_tenants,
    code_hash text NOT NULL,
    user_id text NOT NULL,
    device_kind text NOT NULL,
    created_by text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    PRIMARY KEY (tenant_id, code_hash)
);
CREATE UNIQUE INDEX IF NOT EXISTS hub_pairing_codes_hash ON hub_pairing_codes (code_hash);

CREATE TABLE IF NOT EXISTS hub_client_ids (
    tenant_id text NOT NULL,
    client_id bigint NOT NULL,
    device_id text NOT NULL,
    bound_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE IF NOT EXISTS hub_documents (
    tenant_id text NOT NULL,
    guid text NOT NULL,
    collection text NOT NULL,
    record_id text NOT NULL,
    owner_id text,
    team_id text,
    state bytea NOT NULL,
    created_seq bigint NOT NULL,
    updated_seq bigint NOT NULL,
    scope_seq bigint NOT NULL,
    PRIMARY KEY (tenant_id, guid)
);
CREATE INDEX IF NOT EXISTS hub_documents_updated ON hub_documents (tenant_id, updated_seq);

CREATE TABLE IF NOT EXISTS hub_updates (
    tenant_id text NOT NULL,
    seq bigint NOT NULL,
    guid text NOT NULL,
    data bytea NOT NULL,
    device_id text,
    user_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE IF NOT EXISTS hub_push_receipts (
    tenant_id text NOT NULL,
    device_id text NOT NULL,
    update_id text NOT NULL,
    guid text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (tenant_id, device_id, update_id)
);

CREATE TABLE IF NOT EXISTS hub_audit (
    tenant_id text NOT NULL,
    audit_id bigserial,
    at timestamptz NOT NULL DEFAULT now(),
    user_id text,
    device_id text,
    action text NOT NULL,
    guid text,
    seq bigint,
    detail jsonb,
    PRIMARY KEY (tenant_id, audit_id)
);
