-- Each task keeps the roll-up of its direct subtasks: how many there are and the sum of their
-- progress (subtask_progress = floor(sum / count), the floor of their average). Every read of a
-- task answered them with an aggregate over the parent index: a list of 50 tasks probed it 50
-- times, 100 of the 155 buffers PostgreSQL read for a page (bench --pg-stats, EXPLAIN).
-- Triggers keep the two columns, so every way a subtask is created, moved, changed or deleted
-- (API, importer, recurrence clones, a project deleted with force) is covered by one rule, as
-- 0014's deleted_tasks is.
--
-- Locks: a subtask's write now also updates its parent's row, so a write locks a child before
-- its parent. Deleting a subtree locks it leaves first (the tasks service), never a parent
-- while waiting for one of its children.
ALTER TABLE tasks
    ADD COLUMN subtask_count        integer NOT NULL DEFAULT 0,
    ADD COLUMN subtask_progress_sum bigint  NOT NULL DEFAULT 0;

CREATE FUNCTION subtask_rollup_row() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.parent_task_id = NEW.parent_task_id THEN
        UPDATE tasks.tasks
           SET subtask_progress_sum = subtask_progress_sum
                                      + NEW.progress_percent - OLD.progress_percent
         WHERE id = NEW.parent_task_id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.parent_task_id IS NOT NULL THEN
        UPDATE tasks.tasks
           SET subtask_count = subtask_count - 1,
               subtask_progress_sum = subtask_progress_sum - OLD.progress_percent
         WHERE id = OLD.parent_task_id;
    END IF;
    IF NEW.parent_task_id IS NOT NULL THEN
        UPDATE tasks.tasks
           SET subtask_count = subtask_count + 1,
               subtask_progress_sum = subtask_progress_sum + NEW.progress_percent
         WHERE id = NEW.parent_task_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_subtask_rollup_insert
    AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.parent_task_id IS NOT NULL)
    EXECUTE FUNCTION subtask_rollup_row();

CREATE TRIGGER tasks_subtask_rollup_update
    AFTER UPDATE OF parent_task_id, progress_percent ON tasks
    FOR EACH ROW WHEN (OLD.parent_task_id IS DISTINCT FROM NEW.parent_task_id
                       OR (NEW.parent_task_id IS NOT NULL
                           AND OLD.progress_percent <> NEW.progress_percent))
    EXECUTE FUNCTION subtask_rollup_row();

-- Deletes, once per statement: a subtree or a project goes in one DELETE, and only the parents
-- that stay (the deleted subtree's own parent) are updated.
CREATE FUNCTION subtask_rollup_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tasks.tasks t
       SET subtask_count = t.subtask_count - g.n,
           subtask_progress_sum = t.subtask_progress_sum - g.progress
      FROM (SELECT parent_task_id, count(*)::int AS n, sum(progress_percent) AS progress
              FROM gone WHERE parent_task_id IS NOT NULL GROUP BY parent_task_id) g
     WHERE t.id = g.parent_task_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tasks_subtask_rollup_delete
    AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION subtask_rollup_deleted();

-- The tasks there are now.
UPDATE tasks t
   SET subtask_count = c.n, subtask_progress_sum = c.progress
  FROM (SELECT parent_task_id, count(*)::int AS n, sum(progress_percent) AS progress
          FROM tasks WHERE parent_task_id IS NOT NULL GROUP BY parent_task_id) c
 WHERE t.id = c.parent_task_id;
