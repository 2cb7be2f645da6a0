"""A test SSO: real RSA/EC/Ed25519 keys, its JWKS and OIDC discovery document served over HTTP
on loopback, tokens minted with any claims. Also stubs the SSO endpoints TaskFlow calls (API-key
verify, org members). It can be stopped and restarted on the same port (an SSO outage)."""

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
# Where Better Auth's OIDC provider plugin serves its discovery document (under its base path).
BETTER_AUTH_DISCOVERY_PATH = "/api/auth/.well-known/openid-configuration"
ROOT_DISCOVERY_PATH = "/.well-known/openid-configuration"


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
    """Serves ``/api/auth/jwks`` and an OpenID Provider configuration document like Better Auth
    with its OIDC plugin; ``url`` is what SSO_URL points at.

    ``issuer`` is the ``iss`` of the tokens it mints and of its discovery document
    (``issuer_is_url=True``: its own URL, as a real SSO's). ``discovery_path=None``: no discovery
    document at all (404); ``jwks_path`` moves the key set (the document names it)."""

    __test__ = False  # not a pytest test class

    issuer: str = "https://sso.test"
    keys: dict[str, Any] = field(default_factory=dict)
    jwks_fetches: int = 0
    jwks_available: bool = True
    issuer_is_url: bool = False
    discovery_path: str | None = BETTER_AUTH_DISCOVERY_PATH
    jwks_path: str = "/api/auth/jwks"
    discovery_fetches: int = 0
    api_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    org_members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Opaque access tokens the stub userinfo endpoint knows (token → claims).
    userinfo: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_key_checks: int = 0
    userinfo_calls: int = 0
    extra_routes: dict[str, Callable[[dict[str, Any]], tuple[int, Any]]] = field(
        default_factory=dict
    )
    _server: ThreadingHTTPServer | None = None
    _port: int = 0  # kept across stop(): restart() comes back on the same port

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

    def discovery_document(self, url: str | None = None) -> dict[str, Any]:
        """OpenID Provider metadata as Better Auth's OIDC plugin publishes it (for an SSO
        served at ``url``, default: where this one serves)."""
        root = url or self.url
        base = f"{root}/api/auth"
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{base}/oauth2/authorize",
            "token_endpoint": f"{base}/oauth2/token",
            "userinfo_endpoint": f"{base}/oauth2/userinfo",
            "jwks_uri": f"{root}{self.jwks_path}",
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

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
        """Where it serves (or served, while stopped: an SSO that is down keeps its address)."""
        assert self._port, "issuer not started"
        return f"http://127.0.0.1:{self._port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}{self.jwks_path}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def restart(self) -> TestIssuer:
        """Back on the port it served before :meth:`stop` (the SSO after an outage)."""
        return self.start(self._port)

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
                if path in (ROOT_DISCOVERY_PATH, BETTER_AUTH_DISCOVERY_PATH):
                    issuer.discovery_fetches += 1
                    if path == issuer.discovery_path:
                        self._reply(200, issuer.discovery_document())
                    else:
                        self._reply(404, {"error": "not found"})
                    return
                if path == issuer.jwks_path:
                    issuer.jwks_fetches += 1
                    if not issuer.jwks_available:
                        self._reply(503, {"error": "down"})
                        return
                    self._reply(200, issuer.jwks())
                    return
                if path == "/api/auth/oauth2/userinfo":
                    issuer.userinfo_calls += 1
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
        self._port = int(self._server.server_address[1])
        if self.issuer_is_url:
            self.issuer = self.url
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
