-- The outbox relay's claim on a batch (taskflow_tasks.relay): a relay marks the oldest pending
-- events as its own until claimed_until, posts them to the audit service, then marks them
-- delivered. A claim is a lease in a column, not a held lock, so no transaction stays open
-- across the HTTP call; a relay that dies simply lets its claim expire.
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;
-- Delivered events are kept a while for inspection, then pruned by the relay.
CREATE INDEX outbox_delivered_idx ON outbox (delivered_at) WHERE delivered_at IS NOT NULL;
