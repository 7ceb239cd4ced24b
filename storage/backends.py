"""What differs between SQLite and PostgreSQL when a unit of work talks to its driver.

A backend owns three things: how times are passed as parameters, how a checked-out driver
connection is prepared for a unit of work, and how staged changes are written — all of them
or none, with a moved episode version or an event id already applied reported as
``ConcurrencyConflict``. Reads are single statements, each consistent on its own; correctness
across them comes from the version guard on the write, exactly as in the in-memory unit of work.

- SQLite: the writes run in ``BEGIN IMMEDIATE`` (the write lock is taken first, waiting up to
  the busy timeout, so the version check sees the latest commit), one statement per row kind,
  batches through ``executemany``.
- PostgreSQL: the connection is in autocommit while checked out; one change is one statement
  (``queries.postgres_save``), hence one round trip and its own transaction; several changes
  are wrapped in an explicit transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from pathway.errors import ConcurrencyConflict
from storage.columns import TimeParam, postgres_time, sqlite_time
from storage.outbox import Subscribed, write_notices
from storage.queries import POSTGRESQL, SQLITE, Queries, postgres_save
from storage.writes import ChangeRows

# Unique keys that mean "this event (or this new episode) was already written by someone else".
DUPLICATE_EVENT_KEYS = ("ix_audit_log_event_id", "episodes_pkey")
_SQLITE_DUPLICATE_EVENT = ("audit_log.event_id", "episodes.id")


class Backend:
    """The dialect-specific half of ``SqlUnitOfWork``; one instance per engine."""

    queries: Queries
    time: TimeParam
    dialect: str
    subscribed: Subscribed | None = None  # PostgreSQL: whether any webhook subscription exists

    def checkout(self, driver: Any) -> None:
        """Prepare a driver connection just taken from the pool."""

    def checkin(self, driver: Any) -> None:
        """Leave the driver connection as the pool expects it (no open transaction)."""

    def is_clean(self, driver: Any) -> bool:
        """Usable as is by the next unit of work: open, and no transaction left open."""
        raise NotImplementedError

    def write(self, db: Any, changes: list[ChangeRows]) -> None:
        """Write the changes on the driver cursor ``db``, all or none."""
        raise NotImplementedError

    def transaction(self, db: Any, immediate: bool = True) -> AbstractContextManager[None]:
        """An explicit transaction on the driver cursor ``db`` (``immediate``: take SQLite's
        write lock first, so that a claim sees the latest commit)."""
        raise NotImplementedError

    def savepoint(self, db: Any) -> AbstractContextManager[None]:
        """A savepoint inside the current transaction: an error undoes only what it wrote."""
        raise NotImplementedError

    def _conflict(self, db: Any, rows: ChangeRows) -> ConcurrencyConflict:
        found = db.execute(self.queries.episode_version, {"id": rows.episode_id}).fetchone()
        expected = rows.params["expected_version"] or 0
        return ConcurrencyConflict(rows.episode_id, expected, found[0] if found else None)


class SqliteBackend(Backend):
    queries = SQLITE
    dialect = "sqlite"
    time = staticmethod(sqlite_time)

    def checkin(self, driver: sqlite3.Connection) -> None:
        if driver.in_transaction:
            driver.execute("ROLLBACK")

    def is_clean(self, driver: sqlite3.Connection) -> bool:
        return not driver.in_transaction

    @contextmanager
    def transaction(self, db: sqlite3.Cursor, immediate: bool = True) -> Iterator[None]:
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield
        except BaseException:
            if db.connection.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def savepoint(self, db: sqlite3.Cursor) -> Iterator[None]:
        db.execute("SAVEPOINT timer")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK TO timer")
            db.execute("RELEASE timer")
            raise
        db.execute("RELEASE timer")

    def write(self, db: sqlite3.Cursor, changes: list[ChangeRows]) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            for rows in changes:
                self.write_change(db, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.connection.in_transaction:
                db.execute("ROLLBACK")
            raise

    def write_change(self, db: sqlite3.Cursor, rows: ChangeRows) -> None:
        """Write one change inside the caller's transaction (or savepoint)."""
        q, p = self.queries, rows.params
        update = q.update_episode if rows.moved else q.update_episode_in_place
        try:
            if rows.new_episode:
                db.execute(q.insert_episode, p)
            elif db.execute(update, p).rowcount != 1:
                raise self._conflict(db, rows)
            if p["obs_id"] is not None:
                db.execute(q.insert_observation, p)
            if rows.new_timers:
                db.executemany(q.insert_timer, rows.new_timers)
            if rows.timer_status:
                db.executemany(q.update_timer_status, rows.timer_status)
            if rows.new_tasks:
                db.executemany(q.insert_task, rows.new_tasks)
            if rows.task_status:
                db.executemany(q.update_task_status, rows.task_status)
            db.execute(q.insert_audit, p)  # with its outcome (migration 0012)
            if rows.notices:
                write_notices(db, "sqlite", rows.notices)
        except sqlite3.IntegrityError as exc:
            if str(exc).startswith("UNIQUE") and str(exc).endswith(_SQLITE_DUPLICATE_EVENT):
                raise self._conflict(db, rows) from None
            raise


class PostgresBackend(Backend):
    queries = POSTGRESQL
    dialect = "postgresql"
    time = staticmethod(postgres_time)

    def __init__(self) -> None:
        import psycopg

        self._errors = psycopg.errors
        self._idle = psycopg.pq.TransactionStatus.IDLE
        self._in_error = psycopg.pq.TransactionStatus.INERROR
        self.subscribed = Subscribed()  # skip the outbox part while nobody subscribed

    def checkout(self, driver: Any) -> None:
        driver.autocommit = True

    def checkin(self, driver: Any) -> None:
        if driver.info.transaction_status != self._idle:
            driver.rollback()
        driver.autocommit = False

    def is_clean(self, driver: Any) -> bool:
        return not driver.closed and driver.info.transaction_status == self._idle

    @contextmanager
    def transaction(self, db: Any, immediate: bool = True) -> Iterator[None]:
        with db.connection.transaction():
            yield

    @contextmanager
    def savepoint(self, db: Any) -> Iterator[None]:
        with db.connection.transaction():  # nested in a transaction block: a savepoint
            yield

    def write(self, db: Any, changes: list[ChangeRows]) -> None:
        if len(changes) == 1:  # autocommit: the one statement is the transaction
            self.write_change(db, changes[0])
            return
        with db.connection.transaction():
            for rows in changes:
                self.write_change(db, rows)

    def write_change(self, db: Any, rows: ChangeRows) -> None:
        """Write one change inside the caller's transaction (or savepoint), one statement."""
        if rows.notices and not self.subscribed.check(db):
            rows.notices = []
        sql, params = self.save_statement(rows)
        errors = self._errors
        try:
            written = db.execute(sql, params).fetchone()[0]
        except errors.UniqueViolation as exc:
            if exc.diag.constraint_name in DUPLICATE_EVENT_KEYS:
                raise self._conflict(db, rows) from None
            raise
        except (errors.SerializationFailure, errors.DeadlockDetected):
            raise self._conflict(db, rows) from None
        if written != 1:
            raise self._conflict(db, rows)

    def save_statement(self, rows: ChangeRows) -> tuple[str, dict[str, Any]]:
        """The one statement (and its parameters) that writes a change; it returns 1 when the
        episode was still at the expected version, 0 when another writer moved it."""
        params, parts = rows.params, []
        if params["obs_id"] is not None:
            parts.append("observation")
        for part, batch in (
            ("new_timers", rows.new_timers),
            ("timer_status", rows.timer_status),
            ("new_tasks", rows.new_tasks),
            ("task_status", rows.task_status),
            ("notices", rows.notices),  # the webhook outbox (storage.outbox)
        ):
            if batch:
                parts.append(part)
                params = params | _columns(BATCH_PREFIX[part], batch)
        return postgres_save(rows.new_episode, tuple(parts)), params

    def _conflict(self, db: Any, rows: ChangeRows) -> ConcurrencyConflict:
        status = db.connection.info.transaction_status
        if status == self._in_error:  # an aborted transaction answers no query
            return ConcurrencyConflict(rows.episode_id, rows.params["expected_version"] or 0, None)
        return super()._conflict(db, rows)


BATCH_PREFIX = {
    "new_timers": "t",
    "timer_status": "u",
    "new_tasks": "k",
    "task_status": "v",
    "notices": "n",
}


def _columns(prefix: str, batch: Sequence[dict[str, Any]]) -> dict[str, str]:
    """A batch of rows as one array per column (``t_key``, ``t_due_at``…), for ``unnest``.

    Each array goes as its text literal (``{"a","b",NULL}``), which the statement casts to
    the column's array type: psycopg's own list adapter inspects every element and costs
    more than the whole write of a timer firing (measured: 0.45 ms per change)."""
    return {f"{prefix}_{name}": _array_literal([row[name] for row in batch]) for name in batch[0]}


def _array_literal(values: list[Any]) -> str:
    return "{" + ",".join(_element(v) for v in values) + "}"


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        value = value.isoformat()
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def backend_for(dialect_name: str) -> Backend:
    if dialect_name == "sqlite":
        return SqliteBackend()
    if dialect_name == "postgresql":
        return PostgresBackend()
    raise ValueError(f"dialect {dialect_name!r}: expected sqlite or postgresql")
