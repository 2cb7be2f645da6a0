"""Recurring tasks: when the next occurrence is due, and spawning it (on completion or when due)."""
