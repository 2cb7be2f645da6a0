"""The transactional outbox: events written with each change, and the relay that delivers them."""
