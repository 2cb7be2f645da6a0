"""Safe writes: ETag / If-Match preconditions and Idempotency-Key replays, with their upkeep."""
