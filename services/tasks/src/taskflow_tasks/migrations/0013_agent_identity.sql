-- Which agent worker a caller is (issue 21, finding 1). An agent is now found in the tenant it
-- calls from, and:
--   * a `tf_` API key's agent by the key's id: api_key_id, as before;
--   * an agent JWT's agent by the token's subject and OAuth client: agent_sub, agent_client_id
--     (new). Until now such tokens were filed under api_key_id = their client id (`client_id`,
--     else `azp`) or sub, with no tenant, so every person signing in through one MCP client or
--     CLI was the same agent worker, with the first person's memberships.
--
-- Existing rows keep their columns. Agents created for `tf_` keys stay reachable by those keys
-- (in the tenant they were created in). Agents created for agent JWTs cannot be told apart from
-- them (both hold an id in api_key_id), and are deliberately not carried over: no token finds
-- them any more, so the next call of each person's agent token provisions that person's own
-- agent worker. The old shared rows keep their memberships, tasks and audit history; they stay
-- listed among the tenant's agents for a project owner to remove. (A `tf_` key id is an id the
-- SSO generates, so no new key collides with an old client id.)
ALTER TABLE workers
    ADD COLUMN agent_sub       text,  -- agent JWTs: the token's `sub` (the person it acts for)
    ADD COLUMN agent_client_id text;  -- agent JWTs: the OAuth client (`client_id`, else `azp`)

ALTER TABLE workers DROP CONSTRAINT workers_kind_check;
ALTER TABLE workers ADD CONSTRAINT workers_kind_check CHECK (
    (type = 'human' AND user_id IS NOT NULL AND agent_type IS NULL AND api_key_id IS NULL
        AND agent_sub IS NULL AND agent_client_id IS NULL)
    OR (type = 'agent' AND agent_type IS NOT NULL AND user_id IS NULL
        AND NOT (api_key_id IS NOT NULL AND agent_sub IS NOT NULL)
        AND (agent_client_id IS NULL OR agent_sub IS NOT NULL))
);

-- One agent per key per tenant, and one per (person, client) per tenant; a token without a
-- client is one more "client" of its own (NULLS NOT DISTINCT).
DROP INDEX workers_agent_api_key_key;
CREATE UNIQUE INDEX workers_agent_api_key_key
    ON workers (tenant_id, api_key_id) WHERE api_key_id IS NOT NULL;
CREATE UNIQUE INDEX workers_agent_token_key
    ON workers (tenant_id, agent_sub, agent_client_id) NULLS NOT DISTINCT
    WHERE agent_sub IS NOT NULL;
