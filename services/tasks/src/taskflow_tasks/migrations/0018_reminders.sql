-- reminder.due (issue 18): one planned reminder per task with a due date and a human assignee,
-- re-planned by the "reminders" outbox consumer whenever the task changes, sent once per due
-- date. Sending writes an outbox row (action reminder_due) already marked delivered, so the
-- event consumers see it and the audit relay does not (a reminder is not a change).
CREATE TABLE task_reminders (
    task_id         bigint      PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    due_date        timestamptz NOT NULL,
    fire_at         timestamptz NOT NULL,
    hours_until_due integer     NOT NULL,
    -- The due date the reminder was sent for (NULL: not sent yet).
    sent_for        timestamptz
);
CREATE INDEX task_reminders_due_idx ON task_reminders (fire_at) WHERE sent_for IS NULL;

INSERT INTO event_consumers (name, last_txid, last_id)
SELECT 'reminders', pg_current_xact_id(), coalesce((SELECT max(id) FROM outbox), 0);
