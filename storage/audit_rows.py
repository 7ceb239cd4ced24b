"""``audit verify``'s second half: every episode's rows against a rebuild from its own log.

Set-based and streamed: episodes are read in chunks keyset-paged by id, and each chunk's audit
entries, observations, timers and tasks with one query per table over the chunk's id range
(consecutive ranges cover every id, so a timer or entry whose episode row was deleted is read
too). Five queries per chunk of ``chunk`` episodes, whatever the number of episodes, and memory
bounded by one chunk. The whole run reads one snapshot (a read transaction on SQLite,
REPEATABLE READ on PostgreSQL), so a live system's writes cannot make it see a torn state.

The comparison is pure (``pathway.audit_rebuild``); this module only reads rows into its shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pathway.audit import ChainCheck
from pathway.audit_rebuild import (
    DefinitionFlags,
    Difference,
    EpisodeRows,
    RebuildError,
    first_difference,
    rebuild,
)
from storage.columns import read_json
from storage.sql import QUERIES, for_driver

_RANGES = {
    "range": QUERIES["verify_rows_range"],
    "rest": QUERIES["verify_rows_rest"],
    "one": QUERIES["verify_rows_one"],
}
_PARTS = ("audit", "observations", "timers", "tasks")


@dataclass(slots=True)
class RowsReport:
    """What the rows check found: episodes checked, and the differences (first per episode)."""

    episodes: int = 0
    broken: int = 0
    differences: list[Difference] = field(default_factory=list)  # the first ``keep`` of them

    @property
    def ok(self) -> bool:
        return self.broken == 0


@lru_cache(maxsize=2)
def _statements(dialect: str) -> dict[str, str]:
    out = {
        "episodes": for_driver(QUERIES["verify_rows_episodes"], dialect),
        "episode": for_driver(QUERIES["verify_rows_episode"], dialect),
    }
    for part in (*_PARTS, "chains"):
        for name, fragment in _RANGES.items():
            source = "verify_chains_audit" if part == "chains" else f"verify_rows_{part}"
            sql = QUERIES[source].replace("{range}", fragment)
            out[f"{part}:{name}"] = for_driver(sql, dialect)
    return out


if TYPE_CHECKING:
    from pathway.audit import AuditKey


def verify_rows(
    db: Any,
    dialect: str,
    definition_of: Callable[[str], DefinitionFlags],
    *,
    episode: str | None = None,
    chunk: int = 2000,
    keep: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> RowsReport:
    """Check every episode (or only ``episode``) on the driver cursor ``db`` (sqlite3 or
    psycopg); the differences keep the first ``keep`` broken episodes, in id order.
    ``progress(done, 0)`` after each chunk (0: the total is not counted here)."""
    q = _statements(dialect)
    report = RowsReport()
    with _snapshot(db, dialect):
        for eid, stored, entries in _episodes(db, q, chunk, episode):
            report.episodes += stored is not None
            try:
                expected = rebuild(eid, entries, definition_of)
            except RebuildError as exc:
                found: Difference | None = Difference(eid, "audit log", None, None, str(exc))
            else:
                found = first_difference(eid, stored, expected)
            if found is not None:
                report.broken += 1
                if len(report.differences) < keep:
                    report.differences.append(found)
            if progress is not None and report.episodes % 256 == 0:
                progress(report.episodes, 0)
    if progress is not None:
        progress(report.episodes, 0)
    return report


def _episodes(
    db: Any, q: dict[str, str], chunk: int, only: str | None
) -> Iterator[tuple[str, EpisodeRows | None, list[tuple[Any, str]]]]:
    """(episode id, its stored rows or None, its audit entries), chunk after chunk."""
    if only is not None:
        rows = db.execute(q["episode"], {"id": only}).fetchall()
        yield from _chunk(db, q, rows, "one", {"id": only})
        return
    after = ""
    while True:
        rows = db.execute(q["episodes"], {"after": after, "limit": chunk}).fetchall()
        if len(rows) < chunk:  # the last chunk reads every id after the previous one
            yield from _chunk(db, q, rows, "rest", {"after": after})
            return
        last = rows[-1][0]
        yield from _chunk(db, q, rows, "range", {"after": after, "last": last})
        after = last


def _chunk(
    db: Any, q: dict[str, str], rows: list[Any], range_: str, params: dict[str, Any]
) -> Iterator[tuple[str, EpisodeRows | None, list[tuple[Any, str]]]]:
    stored: dict[str, EpisodeRows] = {row[0]: EpisodeRows(_episode(row)) for row in rows}
    entries: dict[str, list[tuple[Any, str]]] = {}
    for eid, payload, hash_ in db.execute(q[f"audit:{range_}"], params):
        entries.setdefault(eid, []).append((payload, hash_))
    orphans: dict[str, EpisodeRows] = {}
    get = stored.get

    def orphan(eid: str) -> EpisodeRows:  # a row whose episode row is gone: held apart
        return orphans.setdefault(eid, EpisodeRows({}))

    t = _t
    for eid, seq, id_, facts, at, recorded_at, actor, source in db.execute(
        q[f"observations:{range_}"], params
    ):
        (get(eid) or orphan(eid)).observations[seq] = {
            "id": id_, "facts": read_json(facts), "at": t(at), "recorded_at": t(recorded_at),
            "actor": actor, "source": source,
        }  # fmt: skip
    for eid, key, status, due_at, rule_id, state, order, pos, fired_at, set_at in db.execute(
        q[f"timers:{range_}"], params
    ):
        (get(eid) or orphan(eid)).timers[key] = {
            "status": status, "due_at": t(due_at), "rule_id": rule_id, "state": state,
            "order": order, "position": pos, "fired_at": t(fired_at), "set_at": t(set_at),
        }  # fmt: skip
    for row in db.execute(q[f"tasks:{range_}"], params):
        eid, key, status, note, text, rule_id, kind, state, created_at, pos, updated_at = row
        (get(eid) or orphan(eid)).tasks[key] = {
            "status": status, "note": note, "text": text, "rule_id": rule_id, "kind": kind,
            "state": state, "created_at": t(created_at), "position": pos,
            "updated_at": t(updated_at),
        }  # fmt: skip
    for eid, episode_rows in stored.items():
        yield eid, episode_rows, entries.pop(eid, [])
    for eid in sorted(entries.keys() | orphans.keys()):  # ids with rows but no episode row
        yield eid, orphans.get(eid), entries.get(eid, [])


def _episode(row: Any) -> dict[str, Any]:
    (_, definition_version, pathway, state, opened_at, entered_at, care_started_at,
     remembered, links, closed_reason, patient_ref, label, audit_hash, version, facts,
     next_due_at, owner, a_window, a_on, a_status, a_reason, a_deviation) = row  # fmt: skip
    return {
        "state": state, "closed_reason": closed_reason, "version": version,
        "audit_hash": audit_hash, "definition_version": definition_version, "pathway": pathway,
        "patient_ref": patient_ref, "label": label, "owner": owner, "opened_at": _t(opened_at),
        "state_entered_at": _t(entered_at), "care_started_at": _t(care_started_at),
        "facts": _facts(read_json(facts)), "remembered": read_json(remembered),
        "links": read_json(links), "next_due_at": _t(next_due_at),
        "appointment_window": a_window, "appointment_on": a_on, "appointment_status": a_status,
        "appointment_reason": a_reason,
        "appointment_deviation": None if a_deviation is None else bool(a_deviation),
    }  # fmt: skip


def _facts(facts: Any) -> Any:
    if not isinstance(facts, dict):
        return facts
    out = {}
    for name, f in facts.items():
        if isinstance(f, dict) and isinstance(f.get("at"), str):
            f = {**f, "at": _text_time(f["at"])}
        out[name] = f
    return out


def _t(value: Any) -> datetime | None:
    """A stored time: text on SQLite (cached: episodes share most of their times), a datetime
    from psycopg."""
    if value is None:
        return None
    if isinstance(value, str):
        return _text_time(value)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


@lru_cache(maxsize=65536)
def _text_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@contextmanager
def _snapshot(db: Any, dialect: str) -> Iterator[None]:
    """One consistent read of the whole database, changing nothing."""
    if dialect == "postgresql":
        with db.connection.transaction():
            db.execute(QUERIES["verify_rows_snapshot@postgresql"])
            yield
        return
    started = not db.connection.in_transaction
    if started:
        db.execute("BEGIN")
    try:
        yield
    finally:
        if started and db.connection.in_transaction:
            db.execute("ROLLBACK")


def verify_uow_rows(
    uow: Any,
    definition_of: Callable[[str], DefinitionFlags],
    *,
    episode: str | None = None,
    chunk: int = 2000,
    keep: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> RowsReport | None:
    """``verify_rows`` on a SQL unit of work's connection (inside its ``with``); None for a
    unit of work with no database (the in-memory one holds no rows apart from its snapshots)."""
    connection = getattr(uow, "connection", None)
    backend = getattr(uow, "backend", None)
    if connection is None or backend is None:
        return None
    dialect = "postgresql" if type(backend).__name__.startswith("Postgres") else "sqlite"
    return verify_rows(
        connection(),
        dialect,
        definition_of,
        episode=episode,
        chunk=chunk,
        keep=keep,
        progress=progress,
    )


def stream_chains(
    db: Any, dialect: str, *, key: AuditKey, chunk: int = 2000
) -> Iterator[ChainCheck]:
    """Every episode's chain check (``pathway.audit.verify_chain``) on the same chunked stream:
    two queries per chunk instead of two per episode. Not wired into the command (the chain
    step is the chain's own); here so that it can be, and for the bench."""
    from pathway.audit import verify_chain
    from storage.reads import audit_from_row

    q = _statements(dialect)
    with _snapshot(db, dialect):
        after = ""
        while True:
            rows = db.execute(q["episodes"], {"after": after, "limit": chunk}).fetchall()
            last = len(rows) < chunk
            params = {"after": after} if last else {"after": after, "last": rows[-1][0]}
            records: dict[str, list[Any]] = {}
            for row in db.execute(q[f"chains:{'rest' if last else 'range'}"], params):
                records.setdefault(row[0], []).append(audit_from_row(row))
            for row in rows:  # version and audit hash are columns 13 and 12 of the row
                yield verify_chain(row[0], records.pop(row[0], []), (row[13], row[12]), key=key)
            for eid, orphaned in records.items():  # entries of no episode row
                yield ChainCheck(eid, False, len(orphaned), 1, "the episode row is missing")
            if last:
                return
            after = rows[-1][0]
