-- Comms, hub-only state (the conversations and messages themselves are CRDT records).
-- A channel: one WhatsApp number of a tenant at a provider, with its credentials.
CREATE TABLE IF NOT EXISTS hub_comms_channels (
    channel_id text PRIMARY KEY,
    tenant_id text NOT NULL,
    provider text NOT NULL CHECK (provider IN ('waha', 'evolution')),
    account text NOT NULL,
    base_url text NOT NULL,
    api_key text NOT NULL,
    webhook_secret text NOT NULL,
    owner_id text NOT NULL,
    country_code text NOT NULL DEFAULT '91',
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, account)
);
-- One row per outbound message the sender has claimed: 'sending' is committed before the
-- provider is called, so a hub that stops mid-send never sends the message again.
CREATE TABLE IF NOT EXISTS hub_comms_outbound (
    tenant_id text NOT NULL,
    message_id text NOT NULL,
    state text NOT NULL CHECK (state IN ('sending', 'retry', 'sent', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    provider_message_id text,
    last_error text,
    recorded boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX IF NOT EXISTS hub_comms_outbound_todo ON hub_comms_outbound (state)
    WHERE state IN ('sending', 'retry') OR NOT recorded;
CREATE INDEX IF NOT EXISTS hub_comms_outbound_provider_id
    ON hub_comms_outbound (tenant_id, provider_message_id);
-- The best delivery status each provider message id has reported, kept even when the report
-- arrives before the hub has recorded the send (acks can race the sendText answer).
CREATE TABLE IF NOT EXISTS hub_comms_receipts (
    channel_id text NOT NULL,
    provider_message_id text NOT NULL,
    status text NOT NULL,
    rank integer NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, provider_message_id)
);
