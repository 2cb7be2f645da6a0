"""The dashboard\x27s chat endpoint (not part of this API)."""
