"""SSRF guard: a webhook URL must be http(s) and resolve only to public addresses, unless
``WEBHOOK_ALLOW_PRIVATE=true`` (development and tests). Checked when the URL is registered
(422) and again before every delivery (DNS can change)."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

from .rules import address_refusal

RESOLVE_TIMEOUT = 5.0


class UnsafeURL(ValueError):
    """The URL may not be delivered to; the message says why."""


def check_form(url: str) -> tuple[str, int]:
    """(host, port) of an absolute http(s) URL without credentials, else :class:`UnsafeURL`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from exc
    if parts.scheme not in {"http", "https"}:
        raise UnsafeURL("must be an http or https URL")
    if not parts.hostname:
        raise UnsafeURL("must name a host")
    if parts.username or parts.password:
        raise UnsafeURL("must not carry credentials")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise :class:`UnsafeURL` unless ``url`` may be delivered to now."""
    host, port = check_form(url)
    if allow_private:
        return
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: a name IDNA refuses
        raise UnsafeURL(f"host {host!r} cannot be resolved") from exc
    for info in infos:
        address = str(info[4][0])
        refusal = address_refusal(address)
        if refusal:
            raise UnsafeURL(
                f"host {host!r} resolves to {refusal} ({address}); refused unless"
                " WEBHOOK_ALLOW_PRIVATE=true"
            )
