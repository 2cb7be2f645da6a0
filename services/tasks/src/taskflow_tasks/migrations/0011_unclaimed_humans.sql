-- Humans written by `taskflow import-cli` have no SSO subject yet: their user_id is
-- 'cli-import:' || handle until a first SSO login claims them (provisioning). That lookup runs
-- on every first login in a tenant, so it gets a small partial index of the unclaimed ones.
CREATE INDEX workers_unclaimed_humans_idx ON workers (tenant_id)
    WHERE type = 'human' AND starts_with(user_id, 'cli-import:');
