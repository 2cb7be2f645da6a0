"""Project webhooks (issue 18): CRUD, fan-out from the outbox, signed delivery."""
