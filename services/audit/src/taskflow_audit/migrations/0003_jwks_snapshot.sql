-- The last good key set fetched from the SSO (and the OIDC discovery document it was found
-- with), so an audit service restarted while the SSO is down still verifies tokens signed with
-- keys it already knew (up to JWKS_STALE_TTL). Same shape in every service's schema
-- (taskflow_core.auth.snapshot); the newest fetch per JWKS URL is kept.
CREATE TABLE IF NOT EXISTS jwks_snapshot (
    jwks_url   text PRIMARY KEY,
    key_set    jsonb NOT NULL,
    fetched_at timestamptz NOT NULL,
    sso_url    text,
    discovery  jsonb,
    CONSTRAINT jwks_snapshot_has_keys CHECK (jsonb_typeof(key_set -> 'keys') = 'array'),
    CONSTRAINT jwks_snapshot_discovery_is_object
        CHECK (discovery IS NULL OR jsonb_typeof(discovery) = 'object')
);
CREATE INDEX IF NOT EXISTS jwks_snapshot_by_sso ON jwks_snapshot (sso_url, fetched_at DESC);
