-- reminder.due for the tasks that existed before 0018: the "reminders" consumer plans a task's
-- reminder when it sees the task change, and 0018 started it after every change made so far.
-- The same rules as events/reminders.py plan(): more than 24 h left -> 24 h before; 1-24 h ->
-- 1 h before; 5-60 min -> 5 min before (0); 1-5 min -> 30 s before (-1); less: none. Open
-- tasks with a human assignee only; a reminder planned already is kept.
INSERT INTO task_reminders (task_id, due_date, fire_at, hours_until_due)
SELECT t.id, t.due_date,
       t.due_date - CASE
           WHEN t.due_date - now() > interval '24 hours' THEN interval '24 hours'
           WHEN t.due_date - now() > interval '1 hour' THEN interval '1 hour'
           WHEN t.due_date - now() > interval '5 minutes' THEN interval '5 minutes'
           ELSE interval '30 seconds' END,
       CASE
           WHEN t.due_date - now() > interval '24 hours' THEN 24
           WHEN t.due_date - now() > interval '1 hour' THEN 1
           WHEN t.due_date - now() > interval '5 minutes' THEN 0
           ELSE -1 END
FROM tasks t JOIN workers w ON w.id = t.assignee_id AND w.type = 'human'
WHERE t.due_date IS NOT NULL AND t.status <> 'completed'
  AND t.due_date - now() > interval '1 minute'
ON CONFLICT (task_id) DO NOTHING;
