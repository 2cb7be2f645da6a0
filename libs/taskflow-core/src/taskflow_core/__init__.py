"""Shared library of the TaskFlow services (importable only, no entry points)."""

__version__ = "1.1.0"
