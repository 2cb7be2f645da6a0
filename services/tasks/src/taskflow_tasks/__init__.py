"""TaskFlow Tasks service."""

SERVICE = "tasks"
SCHEMA = "tasks"
