"""Pure parts of authentication: tenant chain, actor type, cache decisions, credential kinds,
service credentials, header encoding, durations."""

from __future__ import annotations

import pytest
from taskflow_auth_verifier.resources import header_value, is_preflight
from taskflow_auth_verifier.sso import (
    NO_ORGANIZATION_LIST,
    api_key_tenant,
    api_key_verdict,
    owner_organizations,
    userinfo_verdict,
    valid_api_key,
)
from taskflow_cli.devtoken import parse_duration
from taskflow_core.auth.authenticator import CredentialKind, credential_kind, malformed_credential
from taskflow_core.auth.identity import (
    NO_TENANT_CLAIM,
    Identity,
    identity_from_claims,
    identity_from_dict,
    identity_to_dict,
    require_claimed_tenant,
    tenant_from_claims,
)
from taskflow_core.auth.introspection import TTLCache, verdict_from_answer
from taskflow_core.auth.jwks import CachePolicy, CacheState, Plan, plan_lookup
from taskflow_core.auth.middleware import bearer_token, is_always_public
from taskflow_core.auth.service_tokens import ServiceCredentials, ServiceTokenVerifier
from taskflow_core.config import DEFAULT_TENANT, ConfigError, Settings
from taskflow_core.errors import Unauthorized

# tenant and identity -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "tenant"),
    [
        ({"tenant_id": "t", "organization_id": "o", "organization_ids": ["a"]}, "t"),
        ({"tenant_id": "  ", "organization_id": "o", "organization_ids": ["a"]}, "o"),
        ({"organization_id": " o ", "organization_ids": ["a"]}, "o"),
        ({"organization_ids": [" a ", "b"]}, "a"),
        ({"organization_ids": []}, DEFAULT_TENANT),
        ({"tenant_id": 42, "organization_ids": [7]}, DEFAULT_TENANT),
        ({}, "taskflow-default-org-id"),
    ],
)
def test_tenant_chain(claims: dict[str, object], tenant: str) -> None:
    assert tenant_from_claims(claims) == tenant


def test_identity_from_claims() -> None:
    identity = identity_from_claims(
        {
            "sub": "u1",
            "email": "u1@x",
            "name": "U",
            "role": "admin",
            "organization_ids": ["o1", "o2", 3],
            "azp": "web",
            "client_name": "Web",
        }
    )
    assert identity.tenant_id == "o1"
    assert identity.organization_ids == ("o1", "o2")
    assert (identity.role, identity.actor_type) == ("admin", "human")
    assert (identity.client_id, identity.client_name) == ("web", "Web")


@pytest.mark.parametrize(
    ("claims", "actor"),
    [
        ({"actor_type": "agent"}, "agent"),
        ({"token_type": "Agent"}, "agent"),
        ({"actor_type": "service"}, "human"),  # never from a user token
        ({}, "human"),
    ],
)
def test_actor_type(claims: dict[str, object], actor: str) -> None:
    assert identity_from_claims({"sub": "s", **claims}).actor_type == actor


def test_identity_needs_a_subject() -> None:
    with pytest.raises(ValueError):
        identity_from_claims({"email": "x@y"})
    with pytest.raises(ValueError):
        identity_from_claims({"sub": " "})


def test_identity_wire_round_trip_never_yields_a_service() -> None:
    identity = Identity(sub="a", tenant_id="t", actor_type="agent", organization_ids=("t",))
    assert identity_from_dict(identity_to_dict(identity)) == identity
    api_key = Identity(sub="a", tenant_id="t", actor_type="agent", client_id="k", api_key_id="k")
    assert identity_from_dict(identity_to_dict(api_key)) == api_key
    forged = identity_from_dict({"sub": "x", "actor_type": "service"})
    assert forged.actor_type == "human"


# JWKS cache decisions ----------------------------------------------------------------------

POLICY = CachePolicy(ttl=3600, stale_ttl=86400, min_refresh_interval=30)
HELD = frozenset({"k1"})


def state(fetched: float | None, attempt: float | None, fetching: bool = False) -> CacheState:
    return CacheState(HELD if fetched is not None else frozenset(), fetched, attempt, fetching)


@pytest.mark.parametrize(
    ("cache", "kid", "now", "plan"),
    [
        (state(None, None), "k1", 0, Plan.FETCH),  # nothing held yet
        (state(None, 0), "k1", 10, Plan.UNAVAILABLE),  # SSO failed 10 s ago: 503, no refetch
        (state(None, 0), "k1", 30, Plan.FETCH),  # retried after the interval
        (state(None, 0, fetching=True), "k1", 1, Plan.FETCH),  # join the fetch in flight
        (state(0, 0), "k1", 100, Plan.USE),
        (state(0, 0), "zz", 10, Plan.UNKNOWN_KID),  # unknown kid within 30 s: no fetch
        (state(0, 0), "zz", 31, Plan.FETCH),  # one refetch allowed per 30 s
        (state(0, 3600), "k1", 3610, Plan.USE),  # stale, retried recently: just use
        (state(0, 0), "k1", 3700, Plan.USE_AND_REVALIDATE),  # stale: use, refresh behind
        (state(0, 86000), "zz", 86010, Plan.UNKNOWN_KID),
        (state(0, 90000), "k1", 90010, Plan.UNAVAILABLE),  # past the stale window
    ],
)
def test_plan_lookup(cache: CacheState, kid: str, now: float, plan: Plan) -> None:
    assert plan_lookup(cache, kid, now, POLICY) is plan


def test_random_kid_flood_plans_one_fetch_per_interval() -> None:
    """50 random kids a second for two minutes after a fetch at 0 s: refetches at 30, 60, 90 s."""
    fetch_times, last_attempt = [], 0.0
    for second in range(120):
        for request in range(50):
            cache = CacheState(HELD, 0.0, last_attempt)
            plan = plan_lookup(cache, f"random-{second}-{request}", float(second), POLICY)
            if plan is Plan.FETCH:
                fetch_times.append(second)
                last_attempt = float(second)
    assert fetch_times == [30, 60, 90]


# other pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "kind"),
    [
        ("tf_abc.def.ghi", CredentialKind.API_KEY),
        ("a.b.c", CredentialKind.JWT),
        ("opaque-token", CredentialKind.OPAQUE),
        ("a.b", CredentialKind.OPAQUE),
    ],
)
def test_credential_kind(token: str, kind: CredentialKind) -> None:
    assert credential_kind(token) is kind


JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "token",
    ["opaque-token", "tf_abc123", JWT, "a.b", "abc+/~_-.=", "abc==", "0f" * 16],
)
def test_well_formed_credentials_are_left_to_their_verifier(token: str) -> None:
    assert malformed_credential(token) is None


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("<token>", "Invalid token: malformed"),
        ("$TOKEN", "Invalid token: malformed"),
        ("abc def", "Invalid token: malformed"),
        ('"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"', "Invalid token: malformed"),
        ("a=b", "Invalid token: malformed"),
        ("tokén", "Invalid token: malformed"),
        ("eyJhbGciOiJSUzI1NiJ9", "Invalid JWT: malformed token (3 dot-separated segments"),
        ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIi", "Invalid JWT: malformed token (3 dot-separated"),
        (JWT + ".", "Invalid JWT: malformed token (3 dot-separated segments expected, 4 given)"),
    ],
)
def test_malformed_credentials_say_so(token: str, message: str) -> None:
    reason = malformed_credential(token)
    assert reason is not None and reason.startswith(message), reason


def test_bearer_token() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc ") == "abc"
    for bad in (None, "", "Basic abc", "Bearer", "Bearer   "):
        with pytest.raises(Unauthorized):
            bearer_token(bad)


def test_always_public_paths() -> None:
    assert all(map(is_always_public, ["/", "/health", "/health/ready", "/docs", "/openapi.json"]))
    assert not any(map(is_always_public, ["/api/projects", "/healthz", "/docsx", "/verify"]))
    # Forward-auth lets only preflights pass without a credential, whatever the path.
    assert is_preflight("OPTIONS") and is_preflight("options")
    assert not is_preflight("GET") and not is_preflight(None)


def test_service_credentials_cached_until_near_expiry_and_bound_to_audience() -> None:
    clock = [1_000_000.0]
    settings = Settings(service_secret="s" * 40)
    credentials = ServiceCredentials(settings, "tasks", now=lambda: clock[0])
    first = credentials.token_for("audit")
    clock[0] += 30
    assert credentials.token_for("audit") == first
    clock[0] += 20  # 10 s before expiry: renewed
    renewed = credentials.token_for("audit")
    assert renewed != first
    audit = ServiceTokenVerifier(settings, "audit", now=lambda: clock[0])
    assert audit.verify(renewed).sub == "service:tasks"
    assert audit.verify(renewed).is_service
    tasks = ServiceTokenVerifier(settings, "tasks", now=lambda: clock[0])
    with pytest.raises(Unauthorized):
        tasks.verify(renewed)
    clock[0] += 200  # long expired (beyond the 30 s skew leeway)
    with pytest.raises(Unauthorized):
        audit.verify(renewed)


def test_ttl_cache_expires_and_stays_bounded() -> None:
    clock = [0.0]
    cache: TTLCache[str] = TTLCache(max_entries=3, now=lambda: clock[0])
    cache.put("a", "A", 10)
    assert cache.get("a") is not None and cache.remaining("a") == 10
    clock[0] = 10
    assert cache.get("a") is None
    for key in "bcde":
        cache.put(key, key, 10)
    assert len(cache) == 3 and cache.get("b") is None
    cache.put("z", "Z", 0)  # a zero TTL caches nothing
    assert cache.get("z") is None


def test_sso_answers_become_verdicts() -> None:
    key = valid_api_key(200, {"valid": True, "key": {"id": "k", "userId": "u", "name": "n"}})
    assert key is not None
    good = api_key_verdict(key, ("org-1",))
    assert good.identity is not None
    assert (good.identity.sub, good.identity.actor_type, good.identity.client_id) == (
        "u",
        "agent",
        "k",
    )
    assert (good.identity.api_key_id, good.identity.tenant_id) == ("k", "org-1")
    assert good.identity.tenant_claimed
    assert valid_api_key(200, {"valid": False}) is None
    assert valid_api_key(200, {"valid": True, "key": {"id": "k"}}) is None
    assert valid_api_key(404, None) is None
    assert api_key_verdict(None, ("org-1",)).error == "Invalid API key"
    assert owner_organizations(200, [{"id": "a"}, {"id": 7}, "b", {"id": "c"}]) == ("a", "c")
    assert owner_organizations(200, []) == ()
    assert owner_organizations(401, {"message": "Unauthorized"}) is None
    assert owner_organizations(200, {"not": "a list"}) is None
    assert userinfo_verdict(200, {"sub": "u"}).identity is not None
    assert userinfo_verdict(200, {"email": "no-sub"}).identity is None
    assert userinfo_verdict(401, {}).error == "Token invalid or expired"
    # Any other refusal means the same to the caller; the SSO's status is kept for operators.
    assert userinfo_verdict(404, {}).error == (
        "Token invalid or expired (the SSO's userinfo endpoint answered 404)"
    )
    assert userinfo_verdict(403, {}).error == (
        "Token invalid or expired (the SSO's userinfo endpoint answered 403)"
    )
    assert verdict_from_answer({"active": True, "identity": {"no": "sub"}}).identity is None
    assert verdict_from_answer({"active": False, "error": "Invalid API key"}).error == (
        "Invalid API key"
    )


def test_header_values_are_safe() -> None:
    assert header_value("Ada Lovelace") == "Ada Lovelace"
    assert header_value("Zoë") == "Zo%C3%AB"
    assert "\n" not in header_value("evil\r\nX-Admin: 1")


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("15m", 900), ("12h", 43200)])
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "soon", "5y", ""])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_settings_read_auth_variables() -> None:
    settings = Settings.from_env(
        {
            "JWKS_MIN_REFRESH_INTERVAL": "5",
            "API_KEY_CACHE_TTL": "2",
            "INTROSPECTION_CACHE_TTL": "3",
            "DEV_ISSUER": "true",
            "SSO_URL": "https://sso.example/",
        }
    )
    assert (settings.jwks_min_refresh_interval, settings.api_key_cache_ttl) == (5, 2)
    assert (settings.introspection_cache_ttl, settings.dev_issuer) == (3, True)
    assert settings.effective_jwks_url == "https://sso.example/api/auth/jwks"


@pytest.mark.parametrize(
    ("metadata", "organizations", "tenant", "refusal"),
    [
        (None, ("home",), "home", None),
        ({"tenant_id": "second"}, ("home", "second"), "second", None),
        ({"tenant_id": " second "}, ("home", "second"), "second", None),
        # The owner may write the metadata: it only picks one of the owner's organisations.
        ({"tenant_id": "victim"}, ("home",), None, "'victim' is not an organisation"),
        (None, ("home", "second"), None, "set the key's metadata.tenant_id"),
        (None, (), None, "belongs to no organisation"),
        ({"tenant_id": "home"}, None, None, NO_ORGANIZATION_LIST),
    ],
)
def test_an_api_keys_tenant_is_one_of_its_owners_organisations(
    metadata: dict[str, str] | None,
    organizations: tuple[str, ...] | None,
    tenant: str | None,
    refusal: str | None,
) -> None:
    key = {"id": "k", "userId": "u", "metadata": metadata}
    chosen, why = api_key_tenant(key, organizations)
    assert chosen == tenant
    assert (why is None) == (refusal is None)
    if refusal is not None:
        assert why is not None and refusal in why and "API key" in why


def test_a_missing_tenant_is_known_and_refused_where_required() -> None:
    tenantless = identity_from_claims({"sub": "s", "organization_ids": []})
    assert (tenantless.tenant_id, tenantless.tenant_claimed) == (DEFAULT_TENANT, False)
    with pytest.raises(Unauthorized) as refused:
        require_claimed_tenant(tenantless)
    assert refused.value.message == NO_TENANT_CLAIM and "tenant_id" in NO_TENANT_CLAIM
    named = identity_from_claims({"sub": "s", "organization_id": "o"})
    assert require_claimed_tenant(named) is named
    # Over the introspection wire the flag travels; an answer without it claims nothing.
    assert identity_from_dict(identity_to_dict(tenantless)).tenant_claimed is False
    assert identity_from_dict(identity_to_dict(named)).tenant_claimed is True
    assert identity_from_dict({"sub": "s", "tenant_id": "o"}).tenant_claimed is False
    service = Identity(sub="service:audit", actor_type="service", tenant_claimed=False)
    assert require_claimed_tenant(service) is service  # service credentials have no tenant
