"""ASGI entry point: `uvicorn taskflow_audit.asgi:app`."""

from .app import create_app

app = create_app()
