-- Bookkeeping of `taskflow import-cli` (services/cli/src/taskflow_cli/importer).
--
-- An import is identified by (tenant, SHA-256 of the CLI's data.json). Each row it writes is
-- recorded here in the same transaction as the row itself, under a stable key of the CLI data
-- ('project:<slug>', 'worker:<@handle>', 'member:<slug>:<@handle>', 'task:<cli id>',
-- 'audit:<position>'). A re-run skips recorded keys: a second run creates nothing, and a run
-- killed half way resumes where its last committed chunk ended.
CREATE TABLE import_ledger (
    tenant_id          varchar(100) NOT NULL,
    source_fingerprint char(64)     NOT NULL,
    entity_key         text         NOT NULL,
    entity_id          bigint,      -- the new row's id (NULL for audit events: see event_id)
    event_id           uuid,        -- audit entries: the outbox event id
    created            boolean      NOT NULL,  -- false: an existing row was reused
    recorded_at        timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, source_fingerprint, entity_key)
);

CREATE TABLE import_runs (
    tenant_id          varchar(100) NOT NULL,
    source_fingerprint char(64)     NOT NULL,
    source_path        text         NOT NULL,
    owner_id           text         NOT NULL,
    local_time         text         NOT NULL,  -- how naive local times were converted
    started_at         timestamptz  NOT NULL,
    completed_at       timestamptz,
    runs               integer      NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, source_fingerprint)
);
