"""Where ``replay --database sqlite`` spends its CPU per episode, phase by phase, in one process.

On N generated L1–L2 files (bench/cohort.py, seed 7), process time per episode of: the in-memory
replay (``replay_files``, the ceiling's work), deciding on the recording unit of work without
and with building the rows (``change_rows``), then the write of those decisions in chunks of
250 (``grouped._transaction``) split by statement (each ``executemany``, the COMMIT, the
verification's reads) and the verification itself, twice on the same decided rows: into an
existing file (WAL, as carepath runs) and into a new file as ``storage.new_file`` builds one
(journal in memory, ``synchronous=OFF``); last, the floor: the very statements and
rows of that write replayed with plain ``sqlite3`` into a fresh copy of the schema, foreign keys
off, same pragmas (as written, dicts, and as tuples with ``?`` parameters; and tuples on a
file set up as a new one is built), in the same run.

Run: python bench/profile_replay_db.py [--patients 2000]
"""

from __future__ import annotations

import argparse
import collections
import gc
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort  # noqa: E402

from carepath.bootstrap import current_definitions  # noqa: E402
from carepath.replay import decided as decided_module  # noqa: E402
from carepath.replay import grouped  # noqa: E402
from carepath.replay.runner import replay_files  # noqa: E402
from carepath.settings import Settings  # noqa: E402
from pathway.usecases import DefinitionRegistry  # noqa: E402
from storage.database import (  # noqa: E402
    BUILDING_PRAGMAS,
    SQLITE_PRAGMAS,
    create_engine_for,
    ensure_schema,
)
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory  # noqa: E402

CHUNK = grouped.PER_TRANSACTION


class Traced:
    """A driver cursor that times each statement (process time) and keeps the bulk rows."""

    def __init__(self, cursor: Any, times: dict[str, list[float]], log: list[Any]) -> None:
        self.cursor, self.times, self.log = cursor, times, log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cursor, name)

    def _timed(self, method: Any, sql: str, *args: Any) -> Any:
        start = time.process_time()
        result = method(sql, *args)
        entry = self.times[" ".join(sql.split())[:48]]
        entry[0] += time.process_time() - start
        entry[1] += len(args[0]) if method == self.cursor.executemany else 0
        return result

    def execute(self, sql: str, *args: Any) -> Any:
        return self._timed(self.cursor.execute, sql, *args)

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = [dict(r) if isinstance(r, dict) else r for r in rows]  # kept for the floor
        self.log[-1].append((sql, rows))
        return self._timed(self.cursor.executemany, sql, rows)


def raw_floor(empty: Path, log: list[Any], as_tuples: bool, building: Any = ()) -> float:
    """Process seconds of the same statements and rows through plain sqlite3 (``building``:
    on a file set up as a new one built aside is, ``BUILDING_PRAGMAS``)."""
    path = empty.with_name(f"raw-{as_tuples}-{bool(building)}.sqlite")
    shutil.copy(empty, path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = DELETE" if building else "PRAGMA journal_mode = WAL")
    for pragma in (*SQLITE_PRAGMAS, *building):
        db.execute(pragma)
    db.execute("PRAGMA foreign_keys = OFF")
    chunks = []
    for chunk in log:
        items = []
        for sql, rows in chunk:
            if as_tuples and rows and isinstance(rows[0], dict):  # else: already positional
                names = re.findall(r":(\w+)", sql)
                items.append(
                    (re.sub(r":\w+", "?", sql), [tuple(r[n] for n in names) for r in rows])
                )
            else:
                items.append((sql, rows))
        chunks.append(items)
    start = time.process_time()
    for items in chunks:
        db.execute("BEGIN IMMEDIATE")
        for sql, rows in items:
            db.executemany(sql, rows)
        db.execute("COMMIT")
    db.close()  # the last connection checkpoints the WAL: counted, as a replay's exit is
    return time.process_time() - start


def building_factory(tmp: Path, settings: Settings) -> SqlUnitOfWorkFactory:
    """A fresh file opened as ``storage.new_file`` builds one (journal in memory, no fsync)."""
    engine = create_engine_for(f"sqlite:///{tmp / 'aside.db'}", building=True)
    ensure_schema(engine)
    return SqlUnitOfWorkFactory(engine, settings.audit_key())


def written(factory: SqlUnitOfWorkFactory, decided: list[Any], defs: Any) -> tuple[Any, ...]:
    """Process seconds of writing and verifying ``decided``, by statement and verification,
    and the statements' rows (for the floor)."""
    times: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    log: list[Any] = []
    take, give = factory.connections.take, factory.connections.give
    factory.connections.take = lambda: (lambda h: (h[0], Traced(h[1], times, log), *h[2:]))(take())  # type: ignore[method-assign]
    factory.connections.give = lambda h: give((h[0], h[1].cursor, *h[2:]))  # type: ignore[method-assign]
    verify = [0.0]
    real = {name: getattr(grouped, name) for name in ("_verified", "stored_chains")}

    def timed(name: str) -> Any:
        def run(*a: Any) -> Any:
            t = time.process_time()
            result = real[name](*a)
            verify[0] += time.process_time() - t
            return result

        return run

    for name in real:
        setattr(grouped, name, timed(name))
    start = time.process_time()
    for one in decided:
        log.append([])
        (_, errors), read_back = grouped._transaction(one, defs, factory, None)
        grouped._verify_all(read_back, factory.audit_key)
        assert not errors, errors[:1]
    write = time.process_time() - start
    for name, function in real.items():
        setattr(grouped, name, function)
    factory.connections.take, factory.connections.give = take, give  # type: ignore[method-assign]
    return write, times, verify[0], log


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="profile-replay-db-"))
    try:
        paths = [str(p) for p in write_cohort(tmp / "cohort", args.patients)]
        settings = Settings.from_env()
        defs = DefinitionRegistry(current_definitions(settings))
        factory = uow_factory(f"sqlite:///{tmp / 'replay.db'}", settings.audit_key())
        held = factory.connections.take()
        held[1].execute("PRAGMA wal_checkpoint(TRUNCATE)")
        factory.connections.give(held)
        shutil.copy(tmp / "replay.db", tmp / "empty.sqlite")
        key, fmt = factory.audit_key, factory.connections.backend.time
        n = len(paths)
        replay_files(paths[:50], defs, 1)  # warm
        start = time.process_time()
        replay_files(paths, defs, 1)
        in_memory = time.process_time() - start
        gc.disable()  # as replay_chunk does
        chunks = [paths[i : i + CHUNK] for i in range(0, n, CHUNK)]
        real_rows = decided_module.written_rows
        decided_module.written_rows = lambda changes, time_format, key: ([], False)  # type: ignore[assignment]
        start = time.process_time()
        for chunk in chunks:
            decided_module.decide_all(chunk, defs, key, fmt, False)
        no_rows = time.process_time() - start
        decided_module.written_rows = real_rows  # type: ignore[assignment]
        start = time.process_time()
        decided = [decided_module.decide_all(c, defs, key, fmt, False) for c in chunks]
        with_rows = time.process_time() - start
        factories = {
            "an existing file (WAL)": factory,
            "a new file, built aside": building_factory(tmp, settings),
        }
        phases = {name: written(f, decided, defs) for name, f in factories.items()}
        gc.enable()
        log = phases["an existing file (WAL)"][3]
        floor_dicts = raw_floor(tmp / "empty.sqlite", log, False)
        floor_tuples = raw_floor(tmp / "empty.sqlite", log, True)
        floor_aside = raw_floor(tmp / "empty.sqlite", log, True, BUILDING_PRAGMAS)
        for f in factories.values():
            f.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def us(seconds: float) -> str:
        return f"{1e6 * seconds / n:6,.0f} µs"

    print(f"L1–L2 cohort: {n} files, one process, CPU (process time) per episode")
    print(f"  in memory (replay_files):                 {us(in_memory)}")
    print(f"  decided on the recording unit of work:     {us(no_rows)}")
    print(f"  + the rows built (written_rows):           {us(with_rows - no_rows)}")
    for name, (write, times, verify, _) in phases.items():
        print(
            f"  written and verified into {name}, {CHUNK} per transaction: {us(write)}, of which:"
        )
        statements = 0.0
        for sql, (seconds, rows) in sorted(times.items(), key=lambda kv: -kv[1][0]):
            statements += seconds
            per_row = f"  ({1e6 * seconds / rows:5.1f} µs a row)" if rows else ""
            print(f"    {us(seconds)}  {sql}{per_row}")
        print(f"    {us(verify)}  verification (its two reads included above)")
        reads = sum(seconds for sql, (seconds, _) in times.items() if sql.startswith("SELECT"))
        rest = write - statements - (verify - reads)
        print(f"    {us(rest)}  the rest (Python: the row lists, the episode rows' columns)")
    print(
        f"  floor, the same statements and rows in plain sqlite3: {us(floor_dicts)} (dicts), "
        f"{us(floor_tuples)} (tuples); built aside (tuples): {us(floor_aside)}"
    )


if __name__ == "__main__":
    main()
