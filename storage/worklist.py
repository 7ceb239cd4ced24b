"""The worklist: episodes to act on, the most urgent first, read straight off the episodes table.

Order: by ``next_due_at`` (the episode's earliest pending timer), so overdue episodes come first
(most overdue first), then the ones due soonest; ties by id; episodes with nothing pending last,
by id. Paging is by keyset (``Cursor``: the last row's due time and id), so a page never
repeats or skips a row when episodes are written between two requests, and page 1000 costs what
page 1 costs.

Why it is fast: a terminal episode has no pending timer (the engine cancels them all when it
ends), so the dated part of the default worklist is an in-order walk of
``ix_episodes_next_due_at`` that stops after one page. The undated part (live episodes waiting
on a person, such as an episode whose overdue escalation already fired) is read in id order
from the partial index ``ix_episodes_undated``. Search is a case-insensitive prefix (ASCII
letters) on patient ref or label, through the ``lower(...)`` indexes of migration 0003.
Open escalations are read through the partial index ``ix_tasks_open_escalations``: for the
"escalated" filter (see ``WALK_FROM``) and, in a second statement, to flag a page's rows (a
subquery in the select list made PostgreSQL hash every open escalation on each request).

One SQL text serves SQLite and PostgreSQL except the search, which PostgreSQL runs in the "C"
collation (the collation its index is built in) so that a prefix is a range under any locale.
Statements run on the bare driver, as the unit of work's do: SQLAlchemy Core adds ~35 µs per
execute (``storage/queries.py``), and this runs on every worklist request.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any

import orjson

from pathway.appointments import LIVE, is_missed
from pathway.model import Appointment
from storage.access import borrowed_cursor, dialect_sql
from storage.columns import read_time
from storage.sql import QUERIES
from storage.unit_of_work import ReadyConnections

MAX_LIMIT = 500
_SELECT = QUERIES["worklist_page"]
_ESCALATED_AMONG = QUERIES["worklist_escalated_among"]
# "escalated": with few open escalations, list them all and sort them (cost ∝ their number);
# with many, walk the worklist in due order and test each row (cost ∝ page / their density).
# The per-row test is a scalar subquery because PostgreSQL turns EXISTS and IN into a join
# that sorts every escalated episode. The two costs meet near 3000 at a million episodes.
WALK_FROM = 3000
_ESCALATIONS_UP_TO = QUERIES["worklist_escalations_up_to"]
_IS_ESCALATED = QUERIES["worklist_is_escalated"]
_HAS_ESCALATION = QUERIES["worklist_has_escalation"]
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_AFTER_EVERYTHING = "\U0010ffff"
SORTS = ("due", "appointment")
UNASSIGNED = "\x00none"  # WorklistQuery.assigned: episodes with no owner (no name has a NUL)  # sorts after any character, bytewise (UTF-8) and in "C"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last row's due time (None: the undated part) and id."""

    due: datetime | None
    id: str

    def encode(self) -> str:
        body = orjson.dumps([self.due.isoformat() if self.due else None, self.id])
        return base64.urlsafe_b64encode(body).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor a page returned; ValueError for anything else."""
        try:
            due, id_ = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if not isinstance(id_, str) or not (due is None or isinstance(due, str)):
                raise ValueError
            return cls(None if due is None else read_time(due), id_)
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise ValueError(f"cursor: got {text!r}, expected a next_cursor of a page") from None


@dataclass(frozen=True, slots=True)
class WorklistQuery:
    """What to list. ``states`` is required: the caller names the live states by default."""

    states: tuple[str, ...]
    now: datetime
    pathways: tuple[str, ...] = ()  # definition ids; empty: every pathway
    due_before: datetime | None = None
    overdue: bool = False  # a timer past due (next_due_at <= now)
    escalated: bool = False  # an open escalation task
    search: str | None = None
    assigned: str | None = None  # an owner's name, or UNASSIGNED; None: anyone's or nobody's
    sort: str = "due"  # SORTS: "due" (next_due_at) or "appointment" (the booked day)
    limit: int = 50
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class WorklistItem:
    id: str
    state: str
    patient_ref: str | None
    label: str | None
    next_due_at: datetime | None
    opened_at: datetime
    state_entered_at: datetime
    definition_version: str
    version: int
    escalated: bool
    owner: str | None = None
    appointment: Appointment | None = None  # the booked review (pathway.appointments)
    missed: bool = False  # its day has passed with no review recorded

    @property
    def booked_on(self) -> date | None:
        """The day booked for a review still to attend (booked or missed), else None."""
        a = self.appointment
        return a.on if a is not None and a.status in LIVE else None


@dataclass(frozen=True, slots=True)
class WorklistPage:
    items: list[WorklistItem]
    next_cursor: Cursor | None


class Worklist:
    """Runs worklist queries on one database."""

    def __init__(self, connections: ReadyConnections) -> None:
        self.connections = connections
        self._postgres = connections.engine.dialect.name == "postgresql"
        self._time = connections.backend.time

    def page(self, query: WorklistQuery) -> WorklistPage:
        if not query.states:
            return WorklistPage([], None)
        limit = max(1, min(query.limit, MAX_LIMIT))
        after = query.after
        dated_only = query.sort == "due" and (query.overdue or query.due_before is not None)
        rows: list[Sequence[Any]] = []
        with borrowed_cursor(self.connections) as db:
            walk = query.escalated and self._open_escalations(db) >= WALK_FROM
            if after is None or after.due is not None:
                rows += self._run(db, query, True, after, limit + 1, walk)
                after = None
            if len(rows) <= limit and not dated_only:
                rows += self._run(db, query, False, after, limit + 1 - len(rows), walk)
            rows = rows[: limit + 1]
            ids = [row[0] for row in rows[:limit]]
            escalated = set(ids) if query.escalated else self._escalated_among(db, ids)
        today = query.now.astimezone(UTC).date()
        items = [_item(row, row[0] in escalated, today) for row in rows[:limit]]
        more = len(rows) > limit
        if not more:
            return WorklistPage(items, None)
        last = items[-1]
        return WorklistPage(items, Cursor(_sort_key(query, last), last.id))

    def statement(
        self,
        query: WorklistQuery,
        *,
        dated: bool,
        after: Cursor | None,
        limit: int,
        walk: bool = False,
    ) -> tuple[str, dict[str, Any]]:
        """The SQL of one part (dated or undated) with its parameters (the benchmark EXPLAINs it)."""
        where, params = self._conditions(query, dated=dated, after=after, walk=walk)
        by_day = query.sort == "appointment"
        order = ("e.appointment_on, e.id" if by_day else "e.next_due_at, e.id") if dated else "e.id"
        hint = ""
        if not (dated or self._postgres or query.search or by_day):
            # SQLite's statistics average the huge NULL group of (state, next_due_at) away and
            # would sort every undated row of the state (150 000 closed ones: 160 ms) instead
            # of walking this partial index in id order.
            hint = " INDEXED BY ix_episodes_undated"
        sql = _SELECT.format(hint=hint, where=" AND ".join(where), order=order)
        return dialect_sql(self.connections, sql), params | {"limit": limit}

    def _run(
        self,
        db: Any,
        query: WorklistQuery,
        dated: bool,
        after: Cursor | None,
        limit: int,
        walk: bool,
    ) -> list[Sequence[Any]]:
        sql, params = self.statement(query, dated=dated, after=after, limit=limit, walk=walk)
        return db.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    def _open_escalations(self, db: Any) -> int:
        """How many escalations are open, counting no further than WALK_FROM."""
        sql = dialect_sql(self.connections, _ESCALATIONS_UP_TO)
        return int(db.execute(sql, {"cap": WALK_FROM}).fetchone()[0])

    def _escalated_among(self, db: Any, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        names = [f"e{i}" for i in range(len(ids))]
        sql = _ESCALATED_AMONG.format(ids=", ".join(":" + n for n in names))
        rows = db.execute(dialect_sql(self.connections, sql), dict(zip(names, ids, strict=True)))
        return {row[0] for row in rows.fetchall()}

    def _conditions(
        self, query: WorklistQuery, *, dated: bool, after: Cursor | None, walk: bool
    ) -> tuple[list[str], dict[str, Any]]:
        time = self._time
        names = [f"s{i}" for i in range(len(query.states))]
        where = [f"e.state IN ({', '.join(':' + n for n in names)})"]
        params: dict[str, Any] = dict(zip(names, query.states, strict=True))
        if query.pathways:
            keys = [f"p{i}" for i in range(len(query.pathways))]
            where.append(f"e.pathway IN ({', '.join(':' + k for k in keys)})")
            params |= dict(zip(keys, query.pathways, strict=True))
        by_day = query.sort == "appointment"
        key = "e.appointment_on" if by_day else "e.next_due_at"
        if by_day:
            live = "e.appointment_status IN ('booked', 'missed')"
            where.append(live if dated else f"(e.appointment_status IS NULL OR NOT {live})")
        else:
            where.append("e.next_due_at IS NOT NULL" if dated else "e.next_due_at IS NULL")
        if after is not None and dated:
            where.append(f"({key} > :after_due OR ({key} = :after_due AND e.id > :after_id))")
            due = after.due.date().isoformat() if by_day else time(after.due)  # type: ignore[union-attr]
            params |= {"after_due": due, "after_id": after.id}
        elif after is not None:
            where.append("e.id > :after_id")
            params["after_id"] = after.id
        if query.due_before is not None:
            where.append("e.next_due_at < :due_before")
            params["due_before"] = time(query.due_before)
        if query.overdue:
            where.append("e.next_due_at <= :now")
            params["now"] = time(query.now)
        if query.escalated:
            where.append(_HAS_ESCALATION if walk else _IS_ESCALATED)
        if query.assigned == UNASSIGNED:
            where.append("e.owner IS NULL")
        elif query.assigned is not None:
            where.append("e.owner = :owner")
            params["owner"] = query.assigned
        if query.search:
            prefix = query.search.translate(_ASCII_LOWER)
            collate = ' COLLATE "C"' if self._postgres else ""
            ref, label = (f"(lower(e.{c}){collate})" for c in ("patient_ref", "label"))
            where.append(f"({ref} >= :lo AND {ref} < :hi OR {label} >= :lo AND {label} < :hi)")
            params |= {"lo": prefix, "hi": prefix + _AFTER_EVERYTHING}
        return where, params


def _sort_key(query: WorklistQuery, item: WorklistItem) -> datetime | None:
    """The last row's sort value for its cursor: its due time, or its booked day (00:00 UTC)."""
    if query.sort != "appointment":
        return item.next_due_at
    day = item.booked_on
    return None if day is None else datetime.combine(day, dtime(), UTC)


def _item(row: Sequence[Any], escalated: bool, today: date) -> WorklistItem:
    id_, state, ref, label, due, opened, entered, version_of_definition, version, owner = row[:10]
    a_window, a_on, a_status, a_reason, a_deviation = row[10:15]
    appointment = (
        None
        if a_window is None
        else Appointment(a_window, date.fromisoformat(a_on), a_status, a_reason, bool(a_deviation))
    )
    return WorklistItem(
        id=id_,
        state=state,
        patient_ref=ref,
        label=label,
        next_due_at=None if due is None else read_time(due),
        opened_at=read_time(opened),
        state_entered_at=read_time(entered),
        definition_version=version_of_definition,
        version=version,
        escalated=escalated,
        owner=owner,
        appointment=appointment,
        missed=is_missed(appointment, today),
    )
