-- Events (issue 18): more consumers of the outbox rows the relay delivers to audit, each with
-- its own cursor, so a slow or dead subscriber never delays audit or writes.
--
-- A cursor over the bigserial id alone would skip rows: a transaction can take id 9, another
-- id 10 and commit first. So each row records the id of the transaction that wrote it, and a
-- consumer reads in (txid, id) order only rows whose transaction is older than every
-- transaction still running (pg_snapshot_xmin): those rows are final, and no row can appear
-- behind the cursor later.
ALTER TABLE outbox ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX outbox_txid_idx ON outbox (txid, id);

CREATE TABLE event_consumers (
    name          text        PRIMARY KEY,
    last_txid     xid8        NOT NULL,
    last_id       bigint      NOT NULL,
    -- A consumer that posts over HTTP leases its cursor (no transaction open across a call).
    leased_until  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Consumers start at the present: what the outbox holds now is history, not news.
INSERT INTO event_consumers (name, last_txid, last_id)
SELECT name, pg_current_xact_id(), coalesce((SELECT max(id) FROM outbox), 0)
FROM (VALUES ('notify'), ('webhooks')) AS consumers (name);
