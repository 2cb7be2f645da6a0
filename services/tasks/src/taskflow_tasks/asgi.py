"""ASGI entry point: `uvicorn taskflow_tasks.asgi:app`."""

from .app import create_app

app = create_app()
