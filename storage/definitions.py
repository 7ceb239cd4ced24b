"""Definition versions kept in the database, so that a changed file does not strand episodes.

An episode is pinned to the version it was opened under (``<id>@<sha256 prefix>``). The file
on disk is only the *current* version: the one new episodes get. ``registry_for`` records the
current document the first time any process runs it, and loads every version ever recorded,
so commands and the scheduler keep working on episodes of older versions until they are
migrated. Each stored document is compiled once and must reproduce the version it is stored
under: a document altered in the table is refused, not silently run.

``StoredDefinitions.get`` also looks up a version it does not hold yet: a long-running
process (server, scheduler) meets episodes migrated to a version recorded after it started.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from pathway.definition import Definition, compile_definition
from pathway.errors import InvalidDefinition
from pathway.registry import DefinitionRegistry
from storage.columns import read_json, read_time
from storage.database import create_engine_for, ensure_schema
from storage.sql import QUERIES, for_driver
from storage.unit_of_work import SqlUnitOfWorkFactory

# Plain SQL, not the sqlmodel tables (storage.tables: ~75 ms to import, at every process start:
# the scheduler's workers, each CLI command); ``stored_versions`` (one command) imports them.
_RECORD = QUERIES["record_definition"]
_ALL = QUERIES["definitions_stored"]
_ONE = QUERIES["definition_stored"]
# The database's clock (storage reads none of its own), to the millisecond or better.
_NOW = {"postgresql": "clock_timestamp()", "sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')"}


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One row of ``definitions`` with the episodes pinned to it (``live``: not terminal)."""

    version: str
    first_seen_at: str | None
    episodes: int
    live: int
    stored: bool  # False: episodes name a version whose document was never recorded


class StoredDefinitions(DefinitionRegistry):
    """A registry backed by the ``definitions`` table: unknown versions are looked up there."""

    def __init__(
        self, engine: Engine, current: Iterable[Definition], others: Iterable[Definition]
    ) -> None:
        super().__init__(current, others)
        self.engine = engine
        self._lock = threading.Lock()

    def get(self, version: str) -> Definition:
        try:
            return super().get(version)
        except InvalidDefinition:
            with self._lock:
                found = _load(self.engine, version)
            if not found:
                raise
            self.add(found[0])
            return found[0]


def registry_for(
    source: SqlUnitOfWorkFactory | Engine | str, current: Definition | Iterable[Definition]
) -> StoredDefinitions:
    """The registry every process should use: the current definition of every pathway (the
    shipped and configured files) recorded if new, and every version the database has seen,
    each compiled once and checked.

    ``source`` is a unit-of-work factory (the usual case: its engine is shared), an engine, or
    a database URL (migrated if fresh; note ``sqlite://`` is then a database of its own).
    """
    engine = _engine_of(source)
    currents = [current] if isinstance(current, Definition) else list(current)
    mine = {d.version for d in currents}
    others = [d for d in _load(engine) if d.version not in mine]
    for definition in currents:
        if not _stored(engine, definition.version):  # read first: no write lock usually
            record_definition(engine, definition)
    return StoredDefinitions(engine, currents, others)


def record_definition(engine: Engine, definition: Definition) -> bool:
    """Store the definition's document unless its version is already stored; True if new."""
    postgres = engine.dialect.name == "postgresql"
    sql = _RECORD.format(
        document="CAST(:document AS json)" if postgres else ":document",
        now=_NOW[engine.dialect.name],
    )
    params = {
        "version": definition.version,
        "id": definition.id,
        "content_hash": definition.content_hash,
        "document": canonical_document(definition),
    }
    with engine.connect() as db:
        db.execution_options(sqlite_immediate=True)  # take SQLite's write lock up front
        with db.begin():
            return db.exec_driver_sql(_driver_style(sql, postgres), params).rowcount == 1


def canonical_document(definition: Definition) -> str:
    """The document as its content hash reads it: JSON with sorted keys."""
    return orjson.dumps(definition.document, option=orjson.OPT_SORT_KEYS).decode()


def stored_versions(
    engine: Engine, definitions: DefinitionRegistry, pathway: str | None = None
) -> list[StoredVersion]:
    """Every stored version and every version episodes name, with episode counts (oldest
    first); only one pathway's with ``pathway``."""
    from sqlalchemy import func, select

    from storage.tables import DefinitionRow, EpisodeRow

    _definitions = DefinitionRow.__table__  # type: ignore[attr-defined]
    e = EpisodeRow.__table__.c  # type: ignore[attr-defined]
    with engine.connect() as db:
        rows = db.execute(select(_definitions.c.version, _definitions.c.first_seen_at)).all()
        counts = db.execute(
            select(e.definition_version, e.state, func.count()).group_by(
                e.definition_version, e.state
            )
        ).all()
    seen = {v: read_time(t).isoformat() if t is not None else None for v, t in rows}
    total: dict[str, int] = {}
    live: dict[str, int] = {}
    for version, state, n in counts:
        total[version] = total.get(version, 0) + n
        if not _terminal(definitions, version, state):
            live[version] = live.get(version, 0) + n
    versions = sorted(set(seen) | set(total), key=lambda v: (seen.get(v) or "~", v))
    if pathway is not None:
        versions = [v for v in versions if v.partition("@")[0] == pathway]
    return [
        StoredVersion(v, seen.get(v), total.get(v, 0), live.get(v, 0), v in seen) for v in versions
    ]


def _terminal(definitions: DefinitionRegistry, version: str, state: str) -> bool:
    try:
        return definitions.get(version).is_terminal(state)
    except (InvalidDefinition, KeyError):
        return False  # unknown version or state: count it as live, so it is not overlooked


def _load(engine: Engine, version: str | None = None) -> list[Definition]:
    """The stored versions (all, oldest first, or the one named), compiled and checked."""
    postgres = engine.dialect.name == "postgresql"
    sql, params = (_ALL, {}) if version is None else (_ONE, {"version": version})
    with engine.connect() as db:
        rows = db.exec_driver_sql(_driver_style(sql, postgres), params).all()
    return [_compile_stored(v, document) for v, document in rows]


def _stored(engine: Engine, version: str) -> bool:
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as db:
        found = db.exec_driver_sql(_driver_style(_ONE, postgres), {"version": version}).first()
    return found is not None


def _compile_stored(version: str, document: Any) -> Definition:
    try:
        definition = compile_definition(read_json(document))
    except InvalidDefinition as exc:
        raise InvalidDefinition(f"stored definition {version}: {exc}") from None
    if definition.version != version:
        raise InvalidDefinition(
            f"stored definition {version}: its document compiles to {definition.version}, "
            "expected the version it is stored under (the definitions table was altered)"
        )
    return definition


def _engine_of(source: SqlUnitOfWorkFactory | Engine | str) -> Engine:
    if isinstance(source, Engine):
        return source
    if isinstance(source, str):
        engine = create_engine_for(source)
        ensure_schema(engine)
        return engine
    return source.engine


def _driver_style(sql: str, postgres: bool) -> str:
    return for_driver(sql, "postgresql" if postgres else "sqlite")
