-- The audit trail: append-only entries linked in one SHA-256 hash chain.
--
-- Ids are assigned by the ingest transaction from the chain head (last_id + 1), never from a
-- sequence, so they are contiguous: entry n's predecessor is entry n - 1, and a missing id is
-- itself evidence of a deletion. hash = SHA-256(prev_hash bytes || canonical JSON of the entry)
-- (taskflow_audit.chain); the first entry's prev_hash is 64 zeros.
CREATE TABLE entries (
    id           bigint       PRIMARY KEY CHECK (id > 0),
    event_id     uuid         NOT NULL,
    tenant_id    varchar(100) NOT NULL CHECK (length(tenant_id) > 0),
    project_id   bigint,      -- NULL for tenant-level entries (agents, workers)
    entity_type  varchar(50)  NOT NULL CHECK (length(entity_type) > 0),
    entity_id    bigint       NOT NULL,
    action       varchar(64)  NOT NULL CHECK (length(action) > 0),
    actor_id     bigint,      -- worker id; no FK: the history outlives the worker
    actor_handle varchar(100),
    actor_type   text         NOT NULL CHECK (actor_type IN ('human', 'agent', 'system')),
    details      jsonb        NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
    created_at   timestamptz  NOT NULL,  -- when the change happened (the event's time)
    recorded_at  timestamptz  NOT NULL,  -- when the audit service stored it
    prev_hash    char(64)     NOT NULL,
    hash         char(64)     NOT NULL,
    CONSTRAINT entries_event_id_key UNIQUE (event_id),
    CONSTRAINT entries_hash_key UNIQUE (hash)
);

-- One index per query, each ending with (created_at, id): the order and keyset of every list.
CREATE INDEX entries_project_idx ON entries (project_id, created_at, id);
CREATE INDEX entries_entity_idx  ON entries (entity_type, entity_id, created_at, id);
CREATE INDEX entries_actor_idx   ON entries (actor_id, created_at, id);
CREATE INDEX entries_tenant_idx  ON entries (tenant_id, created_at, id);

-- The chain head: one row, locked FOR UPDATE by each ingest transaction, which serialises
-- appends across processes and replicas and gives the next id and previous hash.
CREATE TABLE chain_head (
    id         smallint    PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    last_id    bigint      NOT NULL DEFAULT 0 CHECK (last_id >= 0),
    last_hash  char(64)    NOT NULL DEFAULT repeat('0', 64),
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO chain_head (id) VALUES (1);

-- Immutability, enforced by the database for every client, not only by this code.
CREATE FUNCTION refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();

-- The head only moves forward, and is never removed.
CREATE FUNCTION refuse_chain_head_rewind() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'the audit chain head cannot be removed (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.last_id < OLD.last_id THEN
        RAISE EXCEPTION 'the audit chain head only moves forward (% -> %)', OLD.last_id, NEW.last_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER chain_head_forward_only BEFORE UPDATE OR DELETE ON chain_head
    FOR EACH ROW EXECUTE FUNCTION refuse_chain_head_rewind();
CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_chain_head_rewind();

-- Grants as a second wall: nobody, the owning role included, holds UPDATE/DELETE/TRUNCATE on
-- the entries (a superuser bypasses grants, not the triggers above).
REVOKE UPDATE, DELETE, TRUNCATE ON entries FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON entries FROM CURRENT_USER;
REVOKE DELETE, TRUNCATE ON chain_head FROM PUBLIC;
REVOKE DELETE, TRUNCATE ON chain_head FROM CURRENT_USER;
