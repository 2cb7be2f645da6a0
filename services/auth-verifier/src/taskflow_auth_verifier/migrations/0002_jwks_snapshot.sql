-- The last good key set fetched from each JWKS URL, so a verifier restarted while the SSO is
-- down still verifies tokens signed with keys it already knew (up to JWKS_STALE_TTL).
CREATE TABLE IF NOT EXISTS jwks_snapshot (
    jwks_url   text PRIMARY KEY,
    key_set    jsonb NOT NULL,
    fetched_at timestamptz NOT NULL,
    CONSTRAINT jwks_snapshot_has_keys CHECK (jsonb_typeof(key_set -> 'keys') = 'array')
);
