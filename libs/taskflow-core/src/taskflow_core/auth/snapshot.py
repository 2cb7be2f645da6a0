"""The last good key set (and the discovery document it was found with), persisted by every
service in a ``jwks_snapshot`` table of its own schema, so that a service restarted while the
SSO is down still verifies tokens signed with keys it knew (for up to ``JWKS_STALE_TTL``).

Design: each service keeps its own copy (a service reads and writes only its own schema), and
the one wiring, :class:`LastGoodKeySet`, is built by ``create_authenticator`` for every service,
so ``taskflow serve all`` (three apps, three copies) and split processes behave alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg_pool
import structlog
from psycopg import sql
from psycopg.types.json import Jsonb

from ..db import transaction
from .discovery import ProviderConfiguration, Source
from .jwks import JWKSCache

log = structlog.get_logger("taskflow.auth.snapshot")


@dataclass(frozen=True)
class KeySetSnapshot:
    jwks_url: str
    key_set: dict[str, Any]
    fetched_at: datetime
    sso_url: str | None  # None: saved before discovery existed
    discovery: dict[str, Any] | None  # the validated discovery document, when there was one


_COLUMNS = "jwks_url, key_set, fetched_at, sso_url, discovery"


class KeySetSnapshotStore:
    """SQL for ``<schema>.jwks_snapshot``: one row per JWKS URL, newest fetch kept."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool, schema: str) -> None:
        self.pool = pool
        self.table = sql.Identifier(schema, "jwks_snapshot")

    async def load_for_jwks_url(self, jwks_url: str) -> KeySetSnapshot | None:
        query = sql.SQL("SELECT {} FROM {} WHERE jwks_url = %s").format(
            sql.SQL(_COLUMNS), self.table
        )
        return await self._one(query, (jwks_url,))

    async def load_latest_for_sso(
        self, sso_url: str, default_jwks_url: str
    ) -> KeySetSnapshot | None:
        """The newest snapshot saved for ``sso_url`` (a row saved before discovery existed is
        found by the default JWKS URL)."""
        query = sql.SQL(
            "SELECT {} FROM {} WHERE sso_url = %s OR (sso_url IS NULL AND jwks_url = %s)"
            " ORDER BY fetched_at DESC LIMIT 1"
        ).format(sql.SQL(_COLUMNS), self.table)
        return await self._one(query, (sso_url, default_jwks_url))

    async def save(self, snapshot: KeySetSnapshot) -> None:
        """Keep the newest snapshot only (replicas may save concurrently, in any order)."""
        query = sql.SQL(
            "INSERT INTO {table} AS s (jwks_url, key_set, fetched_at, sso_url, discovery)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (jwks_url) DO UPDATE"
            " SET key_set = EXCLUDED.key_set, fetched_at = EXCLUDED.fetched_at,"
            " sso_url = EXCLUDED.sso_url, discovery = EXCLUDED.discovery"
            " WHERE s.fetched_at < EXCLUDED.fetched_at"
        ).format(table=self.table)
        discovery = None if snapshot.discovery is None else Jsonb(snapshot.discovery)
        params = (
            snapshot.jwks_url,
            Jsonb(snapshot.key_set),
            snapshot.fetched_at,
            snapshot.sso_url,
            discovery,
        )
        async with transaction(self.pool) as conn:
            await conn.execute(query, params)

    async def _one(self, query: sql.Composed, params: tuple[Any, ...]) -> KeySetSnapshot | None:
        async with transaction(self.pool) as conn:
            cur = await conn.execute(query, params)
            row = await cur.fetchone()
        if row is None:
            return None
        return KeySetSnapshot(
            row["jwks_url"], row["key_set"], row["fetched_at"], row["sso_url"], row["discovery"]
        )


class LastGoodKeySet:
    """Loads the snapshot into the key cache and the provider configuration at start-up (before
    the service answers), and saves one after each successful fetch of the keys."""

    def __init__(
        self, store: KeySetSnapshotStore, jwks: JWKSCache, provider: ProviderConfiguration
    ) -> None:
        self.store = store
        self.jwks = jwks
        self.provider = provider

    async def load(self) -> None:
        """Never raises: without the database the service starts with an empty cache."""
        provider = self.provider
        try:
            if provider.explicit_jwks_url:
                snapshot = await self.store.load_for_jwks_url(provider.explicit_jwks_url)
            else:
                snapshot = await self.store.load_latest_for_sso(
                    provider.sso_url, provider.default_jwks_url
                )
        except Exception as exc:  # the database being down must not stop the service
            log.warning("jwks_snapshot_unavailable", error=type(exc).__name__)
            return
        if snapshot is None:
            log.debug("jwks_snapshot_none", sso_url=provider.sso_url)
            return
        if snapshot.discovery is not None and snapshot.sso_url == provider.sso_url:
            provider.seed(snapshot.discovery)
        if provider.jwks_url.value != snapshot.jwks_url:
            # Saved from a JWKS URL this configuration no longer uses.
            log.info("jwks_snapshot_ignored", jwks_url=snapshot.jwks_url)
            return
        if self.jwks.age is None:
            try:
                self.jwks.seed(snapshot.key_set, snapshot.fetched_at.timestamp(), snapshot.jwks_url)
            except ValueError as exc:
                log.warning("jwks_snapshot_unusable", error=str(exc))
                return
            log.info(
                "jwks_snapshot_loaded",
                jwks_url=snapshot.jwks_url,
                fetched_at=snapshot.fetched_at.isoformat(),
                discovery=provider.metadata_source is Source.PERSISTED,
            )

    async def save(self, key_set: dict[str, Any], fetched_at: float) -> None:
        """The ``JWKSCache`` listener; a failure is logged by the cache (best effort)."""
        metadata = self.provider.metadata
        await self.store.save(
            KeySetSnapshot(
                jwks_url=self.jwks.url,
                key_set=key_set,
                fetched_at=datetime.fromtimestamp(fetched_at, UTC),
                sso_url=self.provider.sso_url,
                discovery=None if metadata is None else metadata.document,
            )
        )
