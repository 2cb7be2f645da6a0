-- The snapshot also keeps the OIDC discovery document the key set was found with (and the SSO
-- it came from), like every other service's copy (taskflow_core.auth.snapshot). Rows saved
-- before this migration have neither and are found by their JWKS URL.
ALTER TABLE jwks_snapshot ADD COLUMN IF NOT EXISTS sso_url text;
ALTER TABLE jwks_snapshot ADD COLUMN IF NOT EXISTS discovery jsonb;
ALTER TABLE jwks_snapshot ADD CONSTRAINT jwks_snapshot_discovery_is_object
    CHECK (discovery IS NULL OR jsonb_typeof(discovery) = 'object');
CREATE INDEX IF NOT EXISTS jwks_snapshot_by_sso ON jwks_snapshot (sso_url, fetched_at DESC);
