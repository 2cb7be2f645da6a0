"""TaskFlow Audit service."""

SERVICE = "audit"
SCHEMA = "audit"
