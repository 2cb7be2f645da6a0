"""Events (issue 18): task events and reminders from the outbox to the notification service,
a Dapr sidecar and project webhooks; each is a consumer of the outbox with its own cursor."""
