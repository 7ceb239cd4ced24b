"""``replay --database URL``: where the grouped replay writes, and when its file appears.

A SQLite URL whose file does not exist yet is built aside (``storage.new_file``): the replay
fills a temporary file in the same directory without a journal on disk or fsyncs, and the file
appears at the path only once every scenario is written and verified, in WAL mode, fsynced.
Scenarios that fail (a file that is not a scenario, a patient that cannot be opened) are
reported as before, after every other scenario is written: the new file holds the good ones
and is moved into place, then the first error is raised. Any other exception (a worker that
dies, an interrupt, a database error) leaves no file at the path, and no temporary file.

An existing file (even an empty one), ``sqlite://`` in memory and PostgreSQL are written in
place, chunk by chunk, exactly as ``carepath.replay.grouped`` always did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from carepath.replay.grouped import PER_TRANSACTION, raise_first, replay_all, replay_grouped
from carepath.replay.runner import ReplayResult
from pathway.audit import AuditKey
from pathway.usecases import DefinitionRegistry
from storage.database import create_engine_for, ensure_schema
from storage.new_file import built_aside, new_sqlite_path
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory


def replay_into(
    url: str,
    paths: Sequence[str],
    definitions: DefinitionRegistry,
    audit_key: AuditKey | None,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    per_transaction: int = PER_TRANSACTION,
) -> list[ReplayResult]:
    """Replay scenario files into the database at ``url``; results in order. Raises the first
    scenario's error once every other one is stored (and, for a new file, in place)."""
    path = new_sqlite_path(url)
    if path is None:
        factory = uow_factory(url, audit_key)
        return replay_grouped(paths, definitions, factory, per_transaction, progress, workers)
    with built_aside(path) as aside:
        factory = SqlUnitOfWorkFactory(create_engine_for(f"sqlite:///{aside}", True), audit_key)
        try:
            ensure_schema(factory.engine)
            done = replay_all(paths, definitions, factory, per_transaction, progress, workers)
        finally:
            factory.dispose()  # every connection closed: the file can be completed
    return raise_first(done)
