"""A test SSO: real RSA/EC/Ed25519 keys, its JWKS served over HTTP on loopback, tokens minted
with any claims. Also stubs the SSO endpoints TaskFlow calls (API-key verify, org members)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeyParameters, KeySet, OKPKey, RSAKey

ALGORITHMS = ["RS256", "ES256", "EdDSA"]


def generate_key(alg: str, kid: str | None = None) -> Any:
    params: KeyParameters = {
        "kid": kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}",
        "alg": alg,
        "use": "sig",
    }
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=params)
    raise ValueError(alg)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TestIssuer:
    """Serves ``/api/auth/jwks`` like Better Auth; ``url`` is what SSO_URL points at."""

    __test__ = False  # not a pytest test class

    issuer: str = "https://sso.test"
    keys: dict[str, Any] = field(default_factory=dict)
    jwks_fetches: int = 0
    jwks_available: bool = True
    api_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    org_members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Opaque access tokens the stub userinfo endpoint knows (token → claims).
    userinfo: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_key_checks: int = 0
    extra_routes: dict[str, Callable[[dict[str, Any]], tuple[int, Any]]] = field(
        default_factory=dict
    )
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        for alg in ALGORITHMS:
            self.add_key(alg)

    # keys and tokens -------------------------------------------------------------------
    def add_key(self, alg: str, kid: str | None = None, publish: bool = True) -> str:
        key = generate_key(alg, kid)
        if publish:
            self.keys[key.kid] = key
        return str(key.kid)

    def kid_for(self, alg: str) -> str:
        return next(kid for kid, key in self.keys.items() if key.alg == alg)

    def unpublished_key(self, alg: str = "RS256", kid: str | None = None) -> Any:
        """A key the JWKS does not list (bad signatures, unknown kids)."""
        return generate_key(alg, kid)

    def unsigned_token(self, sub: str = "mallory", **claims: Any) -> str:
        """``alg: none``: a token with no signature at all."""
        now = int(time.time())
        header = {"alg": "none", "typ": "JWT", "kid": self.kid_for("RS256")}
        payload = {"sub": sub, "iss": self.issuer, "iat": now, "exp": now + 3600, **claims}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}."

    def hs256_with_public_key(self, sub: str = "mallory", **claims: Any) -> str:
        """The classic key-confusion forgery: HS256 with the RS256 *public* key as HMAC secret."""
        kid = self.kid_for("RS256")
        public_pem = self.keys[kid].as_pem(private=False)
        now = int(time.time())
        header = {"alg": "HS256", "typ": "JWT", "kid": kid}
        payload = {"sub": sub, "iss": self.issuer, "iat": now, "exp": now + 3600, **claims}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet(list(self.keys.values())).as_dict(private=False))

    def token(
        self,
        sub: str | None = None,
        *,
        alg: str = "RS256",
        kid: str | None = None,
        key: Any = None,
        expires_in: int = 3600,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A signed JWT; ``claims`` override the defaults (pass ``exp``/``nbf`` to test time)."""
        now = int(time.time())
        sub = sub or f"user-{uuid.uuid4().hex[:10]}"
        payload: dict[str, Any] = {
            "sub": sub,
            "email": f"{sub}@example.test",
            "name": f"User {sub}",
            "iss": self.issuer,
            "iat": now,
            "exp": now + expires_in,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        signing_key = key or self.keys[kid or self.kid_for(alg)]
        protected = {"alg": alg, "kid": signing_key.kid, "typ": "JWT", **(header or {})}
        with warnings.catch_warnings():
            # Better Auth still signs "EdDSA" (RFC 9864 prefers "Ed25519"); so does this stub.
            warnings.filterwarnings("ignore", message="EdDSA is deprecated")
            return jwt.encode(protected, payload, signing_key, algorithms=[alg])

    # HTTP ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "issuer not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/api/auth/jwks"

    def start(self, port: int = 0) -> TestIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                try:
                    return dict(json.loads(raw or b"{}"))
                except ValueError:
                    return {}

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/api/auth/jwks":
                    issuer.jwks_fetches += 1
                    if not issuer.jwks_available:
                        self._reply(503, {"error": "down"})
                        return
                    self._reply(200, issuer.jwks())
                    return
                if path == "/api/auth/oauth2/userinfo":
                    auth = self.headers.get("Authorization") or ""
                    claims = issuer.userinfo.get(auth.removeprefix("Bearer ").strip())
                    if claims is None:
                        self._reply(401, {"error": "invalid_token"})
                    else:
                        self._reply(200, claims)
                    return
                if path.startswith("/api/organizations/") and path.endswith("/members"):
                    org = path.split("/")[3]
                    self._reply(200, issuer.org_members.get(org, []))
                    return
                self._dispatch_extra("GET " + path, {"headers": dict(self.headers)})

            def do_POST(self) -> None:
                path = self.path.split("?")[0]
                body = self._body()
                if path == "/api/api-key/verify":
                    issuer.api_key_checks += 1
                    found = issuer.api_keys.get(str(body.get("key")))
                    if found is None:
                        self._reply(200, {"valid": False, "error": {"message": "Invalid API key"}})
                    else:
                        self._reply(200, {"valid": True, "key": found})
                    return
                self._dispatch_extra("POST " + path, body)

            def _dispatch_extra(self, route: str, body: dict[str, Any]) -> None:
                handler = issuer.extra_routes.get(route)
                if handler is None:
                    self._reply(404, {"error": "not found"})
                    return
                status, reply = handler(body)
                self._reply(status, reply)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
