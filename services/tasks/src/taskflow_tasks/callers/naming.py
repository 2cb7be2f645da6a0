"""How handles, names and slugs are derived for workers and Default projects (pure rules)."""

from __future__ import annotations

import re

HANDLE_MAX = 50
_NOT_HANDLE_CHAR = re.compile(r"[^a-z0-9_-]")
_NOT_SLUG_CHAR = re.compile(r"[^a-z0-9-]")
_SPACES = re.compile(r"\s+")
# Room for a "-NNN" collision suffix inside the 50-character handle column.
_HANDLE_BASE_MAX = HANDLE_MAX - 1 - 6


def _handle_part(text: str) -> str:
    text = _SPACES.sub("-", text.strip().lower().replace(".", "-").replace("_", "-"))
    return _NOT_HANDLE_CHAR.sub("", text)[:_HANDLE_BASE_MAX]


def human_handle_base(email: str | None, sub: str) -> str:
    """``@`` + the email's local part (``.``/``_`` → ``-``), else the first 8 chars of ``sub``.

    Characters a handle may not hold are dropped, so the result always matches
    ``^@[a-z0-9_-]+$`` (the old API could store invalid handles from emails with ``+``)."""
    local = email.split("@", 1)[0] if email else ""
    return "@" + (_handle_part(local) or _handle_part(sub[:8]) or "user")


def placeholder_handle_base(user_id: str) -> str:
    """``@user-<first 8 chars of the user id>`` for a worker added before their first login."""
    return "@user-" + (_handle_part(user_id[:8]) or "unknown")


def placeholder_name(user_id: str) -> str:
    return f"User {user_id[:8]}"


def agent_handle_base(client_name: str | None, key_id: str) -> str:
    """An API-key agent's handle: its key name, else ``agent-`` + the key id's start."""
    return "@" + (_handle_part(client_name or "") or "agent-" + (_handle_part(key_id[:8]) or "key"))


def human_name(name: str | None, email: str | None, sub: str) -> str:
    """``name`` claim, else the email, else ``sub`` (at most 200 characters)."""
    for candidate in (name, email, sub):
        if candidate and candidate.strip():
            return candidate.strip()[:200]
    return "User"


def default_project_slug(sub: str) -> str:
    """``default-<first 8 chars of sub, lowercased>`` (slug characters only)."""
    part = _NOT_SLUG_CHAR.sub("", sub[:8].lower())
    return f"default-{part}" if part else "default"


def first_free(base: str, taken: set[str], max_length: int) -> str:
    """``base`` if free, else ``base-1``, ``base-2``, … (the old API's collision rule)."""
    if base not in taken:
        return base
    n = 1
    while True:
        suffix = f"-{n}"
        candidate = base[: max_length - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        n += 1


def import_claim_email(email: str | None, email_verified: object) -> str | None:
    """The email a first SSO login may claim an imported CLI human by, or ``None``.

    Only an address the IdP says is verified (``email_verified`` is exactly ``true``), and it
    must equal the one recorded at import (``import-cli --email``). A handle never claims: any
    login can derive ``@bob`` from ``bob@…``; humans imported without an email are bound to
    their subject with ``import-cli --user @handle=SUB`` instead.
    """
    if not email or email_verified is not True:
        return None
    return email
