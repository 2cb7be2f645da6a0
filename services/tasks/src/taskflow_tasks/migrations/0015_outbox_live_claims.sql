-- The relay asks, before each claim, whether another relay's claim is live. Without an index
-- that question read every pending event: with a backlog of 100,000 events each claim scanned
-- them all. Live claims are few (one batch), so this partial index answers at once.
CREATE INDEX outbox_claimed_idx ON outbox (claimed_until)
    WHERE delivered_at IS NULL AND claimed_until IS NOT NULL;
