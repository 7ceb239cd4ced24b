"""Many changes written in a handful of statements: the group commit of a deferred batch.

One change costs six statements or so (episode row, observation, timers, tasks, audit entry,
outcome); a batch of a hundred changes written one by one costs six hundred. Written here, it
costs one ``executemany`` per statement kind (psycopg sends each as one pipeline: one round
trip), whatever the batch's size:

- each episode row is written once, with the values of its last change, guarded by the version
  and audit hash its *first* change was decided on — so a batch that fired five timers on one
  episode updates its row once, and another writer that moved it in between is still caught;
- observations, timers, tasks and audit entries (each with its outcome) are inserted (or their
  status updated) in batch order, after the episode rows they refer to, and then the webhook outbox
  rows of the batch's notices (``storage.outbox``).

All or nothing: if an episode moved under the batch (the guarded update found fewer rows than
it expected) or a row already existed (an event id applied by another writer), ``write_group``
raises ``GroupFailed`` and the caller rolls the whole transaction back, then redoes the batch
with a savepoint per decision (``BatchUnitOfWork``'s careful mode), which pins the failure on
the one decision that caused it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from storage.backends import Backend
from storage.group_positional import execute_many
from storage.outbox import write_notices
from storage.writes import ChangeRows


class GroupFailed(Exception):
    """The group could not be written as a whole: roll back and redo it a decision at a time."""


def episode_rows(queue: list[ChangeRows]) -> tuple[list[Any], list[Any], list[Any]]:
    """The episode rows to insert, to update (indexed columns too) and to update in place: one
    per episode, its last change's values under its first change's expected version."""
    first: dict[str, ChangeRows] = {}
    last: dict[str, ChangeRows] = {}  # only the episodes changed more than once
    moved: dict[str, bool] = {}  # the same: whether any of their changes moved them
    for rows in queue:
        episode_id = rows.own["id"]
        start = first.get(episode_id)
        if start is None:
            first[episode_id] = rows
        else:
            last[episode_id] = rows
            moved[episode_id] = moved.get(episode_id, start.moved) or rows.moved
    inserts, updates, in_place = [], [], []
    for episode_id, start in first.items():
        end = last.get(episode_id)
        if end is None:  # changed once in the group: the common case
            if start.new_episode:
                inserts.append(start.params)
            elif start.moved:
                updates.append(start.params)
            else:
                in_place.append(start.in_place_params)
            continue
        if start.new_episode:
            inserts.append(end.params)
            continue
        guard = start.own
        params = end.params if moved[episode_id] else end.in_place_params
        params = params | {
            "expected_version": guard["expected_version"],
            "prev_hash": guard["prev_hash"],
        }
        (updates if moved[episode_id] else in_place).append(params)
    return inserts, updates, in_place


def write_group(backend: Backend, db: Any, queue: list[ChangeRows]) -> None:
    """Write every queued change inside the caller's transaction; ``GroupFailed`` if any did
    not apply (the transaction must then be rolled back: some rows may have been written)."""
    if not queue:
        return
    q = backend.queries
    many = execute_many if backend.dialect == "sqlite" else _dict_many  # sqlite3: ?n is faster
    inserts, updates, in_place = episode_rows(queue)
    try:
        if inserts:
            many(db, q.insert_episode, inserts)
        for sql, batch in ((q.update_episode, updates), (q.update_episode_in_place, in_place)):
            if batch:
                many(db, sql, batch)
                if db.rowcount != len(batch):
                    raise GroupFailed(
                        f"{len(batch) - db.rowcount} of {len(batch)} episodes moved under the batch"
                    )
        _many(many, db, q.insert_observation, [r.own for r in queue if r.own["obs_id"]])
        _many(many, db, q.insert_timer, [t for r in queue for t in r.new_timers])
        _many(many, db, q.update_timer_status, [t for r in queue for t in r.timer_status])
        _many(many, db, q.insert_task, [k for r in queue for k in r.new_tasks])
        _many(many, db, q.update_task_status, [k for r in queue for k in r.task_status])
        many(db, q.insert_audit, [r.own for r in queue])
        notices = [n for r in queue for n in r.notices]
        subscribed = backend.subscribed
        if notices and (subscribed is None or subscribed.check(db)):  # else: no outbox part
            write_notices(db, backend.dialect, notices)
    except GroupFailed:
        raise
    except sqlite3.Error as exc:  # a duplicate event id or episode: redo carefully (only the
        # database's refusals: a bug here must fail loudly, not hide in a careful redo)
        raise GroupFailed(f"{type(exc).__name__}: {exc}") from exc


def _many(many: Any, db: Any, sql: str, batch: list[dict[str, Any]]) -> None:
    if batch:
        many(db, sql, batch)


def _dict_many(db: Any, sql: str, batch: list[dict[str, Any]]) -> None:
    db.executemany(sql, batch)
