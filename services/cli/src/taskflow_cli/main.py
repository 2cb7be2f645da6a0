"""``taskflow dev | serve | migrate``."""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

import structlog
import uvicorn
from taskflow_core.auth.dev_issuer import DEV_ISSUER_NAME
from taskflow_core.config import ConfigError, Settings
from taskflow_core.logging import configure_logging

from .audit_verify import add_audit_parser, cmd_audit
from .devtoken import add_token_parser, cmd_token, dev_banner
from .embedded import forget_dev_database, start_embedded_postgres
from .importer import command as import_cli
from .routes import add_routes_parser, cmd_routes
from .server import ServerStack, add_stack_arguments, resolve_stack
from .stack import SERVICES, all_in_one, migrate

log = structlog.get_logger("taskflow.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskflow", description="TaskFlow backend services")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="the whole stack on one port, embedded DB if none is set")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    add_stack_arguments(dev)

    serve = sub.add_parser("serve", help="one service (or all) in this process; needs DATABASE_URL")
    serve.add_argument("service", choices=[*SERVICES, "all"])
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--migrate", action="store_true", help="apply migrations before serving")
    add_stack_arguments(serve)

    mig = sub.add_parser("migrate", help="apply pending SQL migrations")
    mig.add_argument("--service", choices=list(SERVICES), action="append")

    add_token_parser(sub)
    add_audit_parser(sub)
    import_cli.add_parser(sub)
    add_routes_parser(sub)
    return parser


def _require_database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is required (or use `taskflow dev` for an embedded one)")
    return settings.database_url


def cmd_migrate(settings: Settings, services: list[str] | None) -> int:
    applied = migrate(_require_database_url(settings), services)
    for name, versions in applied.items():
        print(
            f"{name}: {len(versions)} applied" + (f" ({', '.join(versions)})" if versions else "")
        )
    return 0


_PEER_URLS = {
    "tasks_url": "TASKS_URL",
    "audit_url": "AUDIT_URL",
    "auth_verifier_url": "AUTH_VERIFIER_URL",
}


def cmd_serve(
    settings: Settings,
    service: str,
    host: str,
    port: int,
    run_migrations: bool,
    stack: ServerStack | None = None,
) -> int:
    url = _require_database_url(settings)
    stack = stack or resolve_stack()
    if run_migrations:
        migrate(url, None if service == "all" else [service])
    if service == "all":
        # Everything is in this process: unless told otherwise, the services reach each other
        # on the port being served (the relay, audit's access checks, introspection).
        local = f"http://127.0.0.1:{port}"
        settings = settings.with_overrides(
            **{field: local for field, env in _PEER_URLS.items() if not os.environ.get(env)}
        )
    app = all_in_one(settings) if service == "all" else SERVICES[service].create_app(settings)
    run_server(app, host, port, stack)
    return 0


def run_server(app: Any, host: str, port: int, stack: ServerStack, **options: Any) -> None:
    """uvicorn on ``stack``, as `serve` and `dev` both run it (our logging, no access log,
    10 s to finish requests on shutdown, heads over 64 KiB refused on h11 as on httptools)."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=65536,
        loop=stack.loop,
        http=stack.uvicorn_http,
        **options,
    )


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def check_port_free(host: str, port: int) -> None:
    """A ConfigError naming the port and ``--port`` when something already listens there
    (checked before anything starts, so the answer comes at once)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
            raise ConfigError(
                f"port {port} on {host} is already in use (another taskflow dev?);"
                f" pick another one with --port, e.g. taskflow dev --port {port + 1}"
            ) from exc


def cmd_dev(host: str, port: int, loop: str = "auto", http: str = "auto") -> int:
    check_port_free(host, port)
    base = f"http://{host}:{port}"
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "console")
    for key in ("TASKS_URL", "AUDIT_URL", "AUTH_VERIFIER_URL"):
        env.setdefault(key, base)
    if "JWKS_URL" not in env:
        # The local dev issuer signs the tokens: its keys and its issuer name, checked as an
        # SSO's would be (no discovery against this very process before it listens).
        env["JWKS_URL"] = f"{base}/dev/jwks"
        env.setdefault("JWT_ISSUER", DEV_ISSUER_NAME)
    env.setdefault("SSO_URL", base)
    env.setdefault("DEV_ISSUER", "true")  # the auth-verifier serves /dev/jwks
    env.setdefault("TASKFLOW_DATA_DIR", ".taskflow-dev")
    # One process: its services need no shared secret, only one they all know.
    env.setdefault("SERVICE_SECRET", secrets.token_urlsafe(32))
    settings = Settings.from_env(env)
    configure_logging(settings)
    stack = resolve_stack(loop, http)
    server = None
    if not settings.database_url:
        # uvicorn re-raises the signal that stopped it once it has shut down; SIGTERM's default
        # action would then end the process before `finally` stops the embedded database.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        url, server = start_embedded_postgres(settings.data_dir)
        settings = settings.with_overrides(database_url=url)
    try:
        migrate(settings.database_url or "")
        banner = dev_banner(settings, base, embedded=server is not None)
        # Printed once every app has started, so it is the last thing start-up shows (uvicorn's
        # own start-up lines are warnings-only here: the banner says where the stack is).
        app = all_in_one(settings, on_started=lambda: print(banner, flush=True))
        run_server(app, host, port, stack, log_level="warning")
    finally:
        if server is not None:
            # A second Ctrl-C must not interrupt the database's clean shutdown.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            forget_dev_database(settings.data_dir)
            server.cleanup()
            print("embedded PostgreSQL stopped", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "dev":
            return cmd_dev(args.host, args.port, args.loop, args.http)
        if args.command == "import-cli":
            return import_cli.run(args)
        if args.command == "routes":
            return cmd_routes(args)
        settings = Settings.from_env()
        configure_logging(settings)
        if args.command == "token":
            return cmd_token(settings, args)
        if args.command == "audit":
            return cmd_audit(settings, args)
        if args.command == "migrate":
            return cmd_migrate(settings, args.service)
        if args.command == "serve":
            stack = resolve_stack(args.loop, args.http)
            return cmd_serve(settings, args.service, args.host, args.port, args.migrate, stack)
    except ConfigError as exc:
        print(f"taskflow: {exc}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    sys.exit(main())
