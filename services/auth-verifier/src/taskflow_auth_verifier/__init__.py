"""TaskFlow Auth Verifier service."""

SERVICE = "auth-verifier"
SCHEMA = "auth"
