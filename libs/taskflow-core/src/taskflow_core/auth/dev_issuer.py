"""The local dev issuer of ``taskflow dev``: one RS256 key pair created once in the dev data
folder (``<TASKFLOW_DATA_DIR>/dev-issuer.json``), its public half served at ``/dev/jwks`` by the
auth-verifier when ``DEV_ISSUER=true``, and real tokens minted with it (``taskflow token``).

Tokens it mints go through the same verifier as the SSO's: nothing is bypassed."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from ..config import DEFAULT_TENANT

DEV_ISSUER_FILE = "dev-issuer.json"
DEV_ISSUER_NAME = "taskflow-dev"
DEV_TOKEN_LIFETIME = 12 * 3600


class DevIssuer:
    def __init__(self, key: RSAKey) -> None:
        self.key = key

    @classmethod
    def load_or_create(cls, data_dir: Path) -> DevIssuer:
        """The issuer whose key lives in ``data_dir`` (created, mode 0600, on first use)."""
        path = Path(data_dir) / DEV_ISSUER_FILE
        if path.exists():
            document = json.loads(path.read_text(encoding="utf-8"))
            key = KeySet.import_key_set(document).keys[0]
            assert isinstance(key, RSAKey)
            return cls(key)
        key = RSAKey.generate_key(
            2048, parameters={"kid": f"dev-{uuid.uuid4().hex[:8]}", "alg": "RS256", "use": "sig"}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place (fails if present): two processes starting at
        # once never read half a key, and both end up with the same one.
        # Named at random, not by PID: containers sharing the data volume are all PID 1.
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"keys": [key.as_dict(private=True)]}, handle)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return cls.load_or_create(data_dir)
        finally:
            tmp.unlink()
        return cls(key)

    def jwks(self) -> dict[str, Any]:
        """The public key set (what ``/dev/jwks`` serves)."""
        return {"keys": [self.key.as_dict(private=False)]}

    def mint(
        self,
        sub: str,
        *,
        email: str | None = None,
        name: str | None = None,
        tenant: str | None = None,
        agent: bool = False,
        expires_in: int = DEV_TOKEN_LIFETIME,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A signed RS256 token the services accept when ``JWKS_URL`` points at ``/dev/jwks``."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER_NAME,
            "sub": sub,
            "iat": now,
            "exp": now + expires_in,
            "tenant_id": tenant or DEFAULT_TENANT,
            "actor_type": "agent" if agent else "human",
        }
        if email:
            claims["email"] = email
        if name:
            claims["name"] = name
        claims.update(extra or {})
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key, algorithms=["RS256"])
