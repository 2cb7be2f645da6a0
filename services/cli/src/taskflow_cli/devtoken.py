"""Tokens from the local dev issuer: the one ``taskflow dev`` prints at start, and
``taskflow token --sub ... --email ... --name ... --tenant ... [--agent] [--expires 12h]``.

The key lives in ``<TASKFLOW_DATA_DIR>/dev-issuer.json`` (created once); the stack serves its
public half at ``/dev/jwks`` (``DEV_ISSUER=true``, set by ``taskflow dev``), so these are real
RS256 tokens verified like the SSO's."""

from __future__ import annotations

import argparse
import re

from taskflow_core.auth.dev_issuer import DEV_TOKEN_LIFETIME, DevIssuer
from taskflow_core.config import DEFAULT_TENANT, ConfigError, Settings

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """``"90"`` → 90 s; ``"15m"``, ``"12h"``, ``"7d"`` likewise; refuses zero and garbage."""
    match = _DURATION.match(text.lower())
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(f"--expires must be a positive duration such as 3600, 15m, 12h: {text!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def dev_banner(settings: Settings, base: str, *, embedded: bool) -> str:
    """What ``taskflow dev`` prints once it is up: where everything is, and a token for the dev
    user with a line to try it."""
    issuer = DevIssuer.load_or_create(settings.data_dir)
    token = issuer.mint(
        settings.dev_user_id,
        email=settings.dev_user_email,
        name=settings.dev_user_name,
        tenant=DEFAULT_TENANT,
    )
    hours = DEV_TOKEN_LIFETIME // 3600
    database = (
        f"  database: {settings.database_url}  (embedded; psql, taskflow audit verify)\n"
        if embedded
        else "  database: DATABASE_URL\n"
    )
    return (
        f"\nTaskFlow dev stack on {base}\n"
        f"  docs:     {base}/docs\n"
        f"  health:   {base}/health\n"
        f"{database}"
        f"  token:    {settings.dev_user_id}, valid {hours} h (more: taskflow token --sub alice)\n"
        f"  export TOKEN={token}\n"
        f'  curl -H "Authorization: Bearer $TOKEN" {base}/api/projects\n'
    )


def add_token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="mint a token from the local dev issuer")
    token.add_argument("--sub", required=True, help="user id (the JWT subject)")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--tenant", default=DEFAULT_TENANT, help="organisation (tenant_id claim)")
    token.add_argument("--agent", action="store_true", help="actor type agent instead of human")
    token.add_argument("--expires", default=f"{DEV_TOKEN_LIFETIME}", help="e.g. 3600, 15m, 12h")


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    if settings.is_production:
        raise ConfigError("the dev issuer is refused when ENV=production")
    issuer = DevIssuer.load_or_create(settings.data_dir)
    print(
        issuer.mint(
            args.sub,
            email=args.email,
            name=args.name,
            tenant=args.tenant,
            agent=args.agent,
            expires_in=parse_duration(args.expires),
        )
    )
    return 0
