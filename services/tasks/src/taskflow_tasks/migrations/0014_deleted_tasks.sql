-- Which project a deleted task belonged to. The audit service asks the tasks service where a
-- task lives before it shows the task's history; a task deleted before the relay delivered any
-- of its events would otherwise be unknown to both (a 404 for a history that exists).
-- A statement trigger keeps it, so every way a task is deleted (the task, its subtree, a
-- project deleted with force) is covered by one rule.
CREATE TABLE deleted_tasks (
    id         bigint      PRIMARY KEY,  -- the deleted task's id (ids are never reused)
    project_id bigint      NOT NULL REFERENCES projects (id),
    deleted_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION remember_deleted_tasks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tasks.deleted_tasks (id, project_id)
    SELECT id, project_id FROM gone
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_remember_deleted
    AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION remember_deleted_tasks();
