"""A deferred timer batch written on PostgreSQL in one statement per row kind.

``storage.group_writes`` sends one ``executemany`` per statement kind: one round trip, but the
server still runs the statement once per row (a thousand firings: a thousand executions each of
the timer update, the task insert and the audit insert, plus psycopg's per-row parameter
handling in Python). Here each kind is *one* statement: the bulk inserts (tasks, audit
entries with their outcomes) a binary ``COPY`` whose rows psycopg packs in C, the updates and the
rarer inserts an ``unnest`` of column arrays sent in binary (text arrays would be quoted in
Python, slower than the rows themselves). Measured with ``bench/profile_scheduler.py``.

Same rows, same order, same guarantees as ``write_group``:

- each episode row is written once, with its last change's values, guarded by the version and
  audit hash its *first* change was decided on, so another writer that moved it in between is
  caught (fewer rows updated than episodes: ``GroupFailed``);
- observations, new timers, timer statuses, new tasks, task statuses, then audit entries (each
  with its outcome, migration 0012), each one statement after the episode rows; a timer (or
  task) that changed twice in the batch gets its last status, and one the batch created is
  inserted before any status update reaches it;
- a duplicate event id (an audit entry already has it) or any other error is ``GroupFailed``:
  the caller rolls the whole transaction back and redoes the batch with a savepoint per
  decision.

New episodes (an enrolment opened one) and webhook outbox rows are rare in a timer batch and go
through the per-row statements of ``storage.group_writes`` and ``storage.outbox``.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from storage.backends import Backend
from storage.group_writes import GroupFailed
from storage.outbox import write_notices
from storage.sql import QUERIES, pyformat
from storage.writes import ChangeRows

_Q = {
    name: pyformat(QUERIES[f"batch_{name}@postgresql"]).replace(")s", ")b")
    for name in (
        "update_episodes",
        "insert_observations",
        "insert_timers",
        "timer_status",
        "task_status",
    )
}
_GENERIC_PLANS = QUERIES["batch_generic_plans@postgresql"]
_COPY = {
    name: QUERIES[f"batch_copy_{name}@postgresql"] + " (FORMAT BINARY)"
    for name in ("tasks", "audit")
}

EPISODE_COLUMNS = (
    "id",
    "expected_version",
    "prev_hash",
    "state",
    "state_entered_at",
    "definition_version",
    "care_started_at",
    "remembered",
    "closed_reason",
    "audit_hash",
    "version",
    "facts",
    "links",
    "next_due_at",
    "owner",
    "appointment_window",
    "appointment_on",
    "appointment_status",
    "appointment_reason",
    "appointment_deviation",
)
OBSERVATION_COLUMNS = (
    "obs_id",
    "id",
    "version",
    "obs_facts",
    "obs_at",
    "recorded_at",
    "obs_actor",
    "obs_source",
)
TIMER_COLUMNS = (
    "episode_id",
    "key",
    "rule_id",
    "due_at",
    "status",
    "state",
    "order",
    "position",
    "fired_at",
    "set_at",
)
TIMER_STATUS_COLUMNS = ("episode_id", "key", "status", "fired_at")
TASK_COLUMNS = (
    "episode_id",
    "key",
    "rule_id",
    "kind",
    "text",
    "created_at",
    "status",
    "state",
    "position",
)
# The COPY columns' types, in order (binary COPY: the server reads each value as its column's
# type; a varchar or json column takes text's bytes as they are).
TASK_TYPES = ("text",) * 5 + ("timestamptz", "text", "text", "int4")
TASK_STATUS_COLUMNS = ("episode_id", "key", "status", "note", "updated_at")
AUDIT_COLUMNS = (  # named as in the change's parameters (id: the episode's, version: its seq)
    "id",
    "version",
    "event_id",
    "kind",
    "actor",
    "at",
    "recorded_at",
    "state_from",
    "state_to",
    "definition_version",
    "payload",
    "prev_hash",
    "hash",
    "outcome",  # the command's outcome, in its audit entry (migration 0012)
    "caller",
    "idempotency_key",
    "request_hash",
)
AUDIT_TYPES = ("text", "int4", "text", "text", "text", "timestamptz", "timestamptz") + (
    "text",
) * 10


def columns(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """Row dicts turned into one list per column: the arrays ``unnest`` takes apart again."""
    return {name: [row[name] for row in rows] for name in names}


def episode_updates(queue: list[ChangeRows]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows to insert, rows to update): one per episode, its last change's values; an update
    is guarded by the version and audit hash its first change was decided on."""
    first: dict[str, ChangeRows] = {}
    last: dict[str, ChangeRows] = {}
    for rows in queue:
        first.setdefault(rows.episode_id, rows)
        last[rows.episode_id] = rows
    inserts, updates = [], []
    for episode_id, start in first.items():
        params = last[episode_id].params
        if start.new_episode:
            inserts.append(params)
        else:
            guard = start.own
            updates.append(
                params
                | {"expected_version": guard["expected_version"], "prev_hash": guard["prev_hash"]}
            )
    return inserts, updates


def last_status(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One status update per (episode, key), the batch's last: an ``UPDATE … FROM`` joining
    two elements to one row would apply only one of them, in no defined order."""
    return list({(r["episode_id"], r["key"]): r for r in rows}.values())


def write_group_arrays(
    backend: Backend, db: Any, queue: list[ChangeRows], release_for: str | None = None
) -> set[str]:
    """Write every queued change inside the caller's transaction (PostgreSQL); ``GroupFailed``
    if any did not apply (the transaction must then be rolled back). The claims of worker
    ``release_for`` on the episodes updated are released by the same statement: their ids are
    returned, so that the worker releases only the others."""
    if not queue:
        return set()
    inserts, updates = episode_updates(queue)
    try:
        db.execute(_GENERIC_PLANS)  # and prepare=True below: no plan of tables' statistics
        if inserts:
            db.executemany(backend.queries.insert_episode, inserts)
        if updates:
            params = columns(updates, EPISODE_COLUMNS) | {"worker": release_for}
            db.execute(_Q["update_episodes"], params, prepare=True)
            if db.rowcount != len(updates):
                raise GroupFailed(
                    f"{len(updates) - db.rowcount} of {len(updates)} episodes moved under the batch"
                )
        params = [r.own for r in queue]
        _array(db, "insert_observations", [p for p in params if p["obs_id"]], OBSERVATION_COLUMNS)
        _array(db, "insert_timers", [t for r in queue for t in r.new_timers], TIMER_COLUMNS)
        status = last_status([t for r in queue for t in r.timer_status])
        _array(db, "timer_status", status, TIMER_STATUS_COLUMNS)
        _copy(db, "tasks", [k for r in queue for k in r.new_tasks], TASK_COLUMNS, TASK_TYPES)
        status = last_status([k for r in queue for k in r.task_status])
        _array(db, "task_status", status, TASK_STATUS_COLUMNS)
        _copy(db, "audit", params, AUDIT_COLUMNS, AUDIT_TYPES)
        notices = [n for r in queue for n in r.notices]
        subscribed = backend.subscribed
        if notices and (subscribed is None or subscribed.check(db)):
            write_notices(db, backend.dialect, notices)
    except GroupFailed:
        raise
    except Exception as exc:  # a duplicate event id or episode, a deadlock: redo carefully
        import psycopg  # here: a SQLite process imports this module but never psycopg

        if not isinstance(exc, psycopg.Error):
            raise  # not the database's refusal but a bug: fail loudly, not in a careful redo
        raise GroupFailed(f"{type(exc).__name__}: {exc}") from exc
    return {row["id"] for row in updates}


def _array(db: Any, name: str, rows: list[dict[str, Any]], names: tuple[str, ...]) -> None:
    if rows:
        db.execute(_Q[name], columns(rows, names), prepare=True)


def _copy(
    db: Any, name: str, rows: list[dict[str, Any]], names: tuple[str, ...], types: tuple[str, ...]
) -> None:
    """Rows copied in binary: a third of text COPY's Python time per audit entry (times and
    integers are packed, not formatted; no escaping), and no text parsing on the server."""
    if rows:
        pick = itemgetter(*names)
        with db.copy(_COPY[name]) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(pick(row))
