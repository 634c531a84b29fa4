-- Surface sessions: the heartbeat of each app surface (an iPad app, a kiosk screen, a WebOS
-- tab) a user has open. Hub-local and overwritten in place: presence, not history, so it never
-- enters the CRDT log.
CREATE TABLE IF NOT EXISTS hub_surface_sessions (
    tenant_id text NOT NULL REFERENCES hub_tenants,
    surface_id text NOT NULL,
    user_id text NOT NULL,
    surface text NOT NULL,
    state text NOT NULL,
    app_version text,
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    beats bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, surface_id)
);
CREATE INDEX IF NOT EXISTS hub_surface_sessions_user ON hub_surface_sessions (tenant_id, user_id, last_seen);
