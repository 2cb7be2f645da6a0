"""Spawning the next occurrence of a recurring task, with its audit events.

:func:`spawn_next_occurrence` is the one way an occurrence is made, used by the completing
request (trigger ``on_complete``/``both``) and by the due-date scheduler (trigger
``on_due_date``/``both``). Both run with the source task locked (``FOR UPDATE``) and set its
``has_spawned_next``, so a task spawns at most one successor whichever path gets there first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from ..outbox.events import Author, record
from ..tasks.inserts import insert_plain
from . import rules, store

Conn = psycopg.AsyncConnection[Any]
Row = dict[str, Any]


async def spawn_next_occurrence(
    conn: Conn, source: Row, author: Author, now: datetime, *, when_due: bool
) -> int | None:
    """Create the occurrence after ``source`` (locked by the caller), by ``author``'s worker,
    with its audit events; return its id, or None when the series is full
    (``rules.MAX_OCCURRENCES_MEANING``) or its next occurrence would fall past the end of the
    calendar (``rules.SERIES_END_MEANING``)."""
    root_id = source["recurring_root_id"] or source["id"]
    size = await store.series_size(conn, root_id)
    due = rules.next_due(
        source["recurrence_pattern"], due_date=source["due_date"], now=now, catch_up=when_due
    )
    room = rules.series_has_room(max_occurrences=source["max_occurrences"], tasks_in_series=size)
    full = not room
    if full or due is None:  # the series ends here (due is None: past the calendar's end)
        if when_due:
            # Stop the scheduler from looking at this task again.
            await store.mark_spawned(conn, source["id"], now)
            reason = "max_occurrences reached" if full else rules.SERIES_END_REASON
            await _source_event(conn, source, author, now, spawned=None, reason=reason)
        return None
    new_id = await insert_plain(
        conn,
        {
            "project_id": source["project_id"],
            "title": source["title"],
            "description": source["description"],
            "priority": source["priority"],
            "tags": list(source["tags"]),
            "due_date": due,
            "is_recurring": True,
            "recurrence_pattern": source["recurrence_pattern"],
            "max_occurrences": source["max_occurrences"],
            "recurring_root_id": root_id,
            "recurrence_trigger": source["recurrence_trigger"],
            "clone_subtasks_on_recur": source["clone_subtasks_on_recur"],
            "assignee_id": source["assignee_id"],
            "parent_task_id": source["parent_task_id"],
            "created_by_id": _creator(author),
            "created_at": now,
            "updated_at": now,
        },
    )
    cloned = 0
    if source["clone_subtasks_on_recur"]:
        cloned = await _clone_subtasks(conn, source["id"], new_id, author, now)
    await store.mark_spawned(conn, source["id"], now)
    details: dict[str, Any] = {
        "title": source["title"],
        "recurring_root": root_id,
        "recurrence_pattern": source["recurrence_pattern"],
        "next_due": due.isoformat(),
        "cloned_subtasks": cloned,
    }
    if when_due:
        details.update(spawned_from=source["id"], trigger="due_date")
        action = "spawned_recurring"
    else:
        details.update(recurring_from=source["id"])
        action = "recurring_spawn"
    occurrence = {"id": new_id, "project_id": source["project_id"]}
    await record(conn, author.task_event(occurrence, action, details, now))
    if when_due:
        # On completion the source's own event (status_changed/approved) covers the flag.
        await _source_event(conn, source, author, now, spawned=new_id)
    return new_id


async def _source_event(
    conn: Conn,
    source: Row,
    author: Author,
    now: datetime,
    *,
    spawned: int | None,
    reason: str | None = None,
) -> None:
    """The due-date spawner changed the source task itself (``has_spawned_next``): it spawned
    ``spawned``, or the series ended for ``reason``."""
    details: dict[str, Any] = {"has_spawned_next": {"before": False, "after": True}}
    if spawned is None:
        details["reason"] = reason
    else:
        details["spawned_task_id"] = spawned
    await record(conn, author.task_event(source, "updated", details, now))


async def _clone_subtasks(
    conn: Conn,
    source_id: int,
    new_parent_id: int,
    author: Author,
    now: datetime,
) -> int:
    """Copy the whole subtree under ``source_id`` beneath ``new_parent_id``: pending, 0%,
    never recurring; one ``cloned_subtask`` event per clone."""
    new_ids = {source_id: new_parent_id}
    for row in await store.subtree_below(conn, source_id):
        parent = new_ids[row["parent_task_id"]]
        clone_id = await insert_plain(
            conn,
            {
                "project_id": row["project_id"],
                "title": row["title"],
                "description": row["description"],
                "priority": row["priority"],
                "tags": list(row["tags"]),
                "due_date": row["due_date"],
                "assignee_id": row["assignee_id"],
                "parent_task_id": parent,
                "created_by_id": _creator(author),
                "created_at": now,
                "updated_at": now,
            },
        )
        new_ids[row["id"]] = clone_id
        details = {"title": row["title"], "cloned_from": row["id"], "parent_task_id": parent}
        clone = {"id": clone_id, "project_id": row["project_id"]}
        await record(conn, author.task_event(clone, "cloned_subtask", details, now))
    return len(new_ids) - 1


def _creator(author: Author) -> int:
    """The worker an occurrence (and its cloned subtasks) is created by: the author's."""
    assert author.actor.worker_id is not None
    return author.actor.worker_id
