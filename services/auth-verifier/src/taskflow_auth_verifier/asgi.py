"""ASGI entry point: `uvicorn taskflow_auth_verifier.asgi:app`."""

from .app import create_app

app = create_app()
