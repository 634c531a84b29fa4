-- A receipt records what the hub answered for a device's update id, for good: the sequence it
-- committed at, or (seq NULL) the refusal it got. A refused id stays refused.
ALTER TABLE hub_push_receipts ALTER COLUMN seq DROP NOT NULL;
ALTER TABLE hub_push_receipts ADD COLUMN IF NOT EXISTS reason text;
ALTER TABLE hub_push_receipts ADD COLUMN IF NOT EXISTS message text;
-- When a throttled device last pushed (throttling is per device, across sessions and hubs).
ALTER TABLE hub_devices ADD COLUMN IF NOT EXISTS last_push_at timestamptz;
