"""Storage speed: persisted decisions/s through SqlUnitOfWork, next to the raw driver's ceiling.

A persisted decision is one ``usecases.observe`` call (a pain score on an episode in
conservative_care: rules are evaluated, nothing transitions) through a fresh ``SqlUnitOfWork``:
idempotency lookup, episode read, engine, audit entry, and the write of episode row,
observation and audit entry (with its outcome, migration 0012) in one transaction.

Two references, measured in the same run on the same kind of database and connection settings:
- ceiling: the driver alone doing the smallest write transaction, update one row and insert one
  row (sqlite3 module; psycopg with its defaults: BEGIN, two statements, COMMIT);
- SQL floor: the driver alone replaying exactly the statements SqlUnitOfWork sent during the
  run, on a copy of the database as it was before the run. ``decisions/s`` can never beat it;
  the gap between them is our Python (engine included), the gap to the ceiling is the SQL a
  decision needs (three rows in three tables, two lookups, and the WAL/commit work they cost).
Targets: ≥ 25 % of the ceiling on SQLite, ≥ 50 % on PostgreSQL. Each is printed twice: one
decision per transaction (an interactive command), and group-committed (``storage.group``,
GROUP decisions per transaction, a savepoint-equivalent all-or-nothing per decision), as a
caller with many decisions at once runs them.

Every decision's ``now`` (and ``at``) is read from ``CLOCK``, a clock that advances as a real
one does (T0 + 2 days, plus the real time elapsed since the run began): the time-ordered ids
``now`` makes (an audit entry's event id) then append to their index as a deployment's do. With
one constant ``now``, as before, every id of a run shared one millisecond and the unique event-id
index took a page write per decision (23.6 of 157 WAL frames per 100 decisions) that no real
deployment pays. The ceiling reads no clock: it writes no time (and reading one there would
only lower it, flattering the ratio).

The ceiling, one-per-transaction and group-committed decisions are measured in turn, ROUNDS
times each on a share of the run (``interleaved``), so that a change in the machine's load
(these machines are shared) falls on all three alike rather than on whichever ran last.

Run:  .venv/bin/python bench/bench_storage.py [--decisions 10000] [--episodes 200] [--rounds 5]
      [--backend both|sqlite|postgresql]
PostgreSQL: CAREPATH_TEST_POSTGRES_URL, else a throwaway cluster started here (skipped if
PostgreSQL is not installed). Prints figures; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from pathway import usecases
from pathway.definition import load_definition
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork, UnitOfWork
from pathway.usecases import DefinitionRegistry
from storage.database import SQLITE_PRAGMAS
from storage.group import run_grouped
from storage.postgres_cluster import postgres_available, postgres_server
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory

DEFS = DefinitionRegistry(load_definition())
T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
PAYLOAD = "x" * 600  # about the size of an observe's audit payload
TARGETS = {"SQLite": 0.25, "PostgreSQL": 0.50}
GROUP = 100  # decisions per transaction when group-committed


class Clock:
    """``now()``: ``start`` plus the real time elapsed since this clock was made (a wall clock
    that advances as a deployment's does, from a fixed date the episodes were opened before)."""

    def __init__(self, start: datetime) -> None:
        self.start, self.began = start, time.perf_counter()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.perf_counter() - self.began)


CLOCK = Clock(T0 + timedelta(days=2))  # every decision's now (and at): after the episodes opened
Statements = list[tuple[str, str, Any]]  # (method, sql, parameters)


def open_in_care(make_uow: Callable[[], UnitOfWork], n: int) -> list[str]:
    ids = []
    for i in range(n):
        uow = make_uow()
        ep = usecases.open_episode(
            uow, DEFS, {"age": 70 + i % 20, "first_fracture": True}, at=T0, now=T0, actor="b"
        ).outcome.episode_id
        facts = {
            "fracture_levels": ["L1"],
            "pain_score": 7,
            "mri_done": True,
            "neuro_exam_done": True,
            "vertebral_collapse_pct": 20,
        }
        usecases.observe(uow, DEFS, ep, facts, at=T0, now=T0, actor="b")
        ids.append(ep)
    return ids


def grouped_seconds(factory: SqlUnitOfWorkFactory, ids: list[str], n: int, first: int = 0) -> float:
    """The time of ``n`` decisions group-committed (``storage.group``): GROUP per transaction,
    each all or nothing, as a caller with many decisions at once (an import, a migration)."""
    clock = CLOCK.now

    def decide(uow: UnitOfWork, i: int) -> Any:
        facts = {"pain_score": i % 10}
        now = clock()
        return usecases.observe(uow, DEFS, ids[i % len(ids)], facts, at=now, now=now, actor="bench")

    start = time.perf_counter()
    results = run_grouped(factory, range(first, first + n), decide, size=GROUP)
    elapsed = time.perf_counter() - start
    failed = [r for r in results if isinstance(r, Exception)]
    assert not failed, failed[:3]
    return elapsed


def one_per_tx_seconds(
    make_uow: Callable[[], UnitOfWork], ids: list[str], n: int, first: int = 0
) -> float:
    """The time of ``n`` decisions, each in its own unit of work (an interactive command)."""
    clock = CLOCK.now
    start = time.perf_counter()
    for i in range(first, first + n):
        at = clock()
        usecases.observe(
            make_uow(),
            DEFS,
            ids[i % len(ids)],
            {"pain_score": i % 10},
            at=at,
            now=at,
            actor="bench",
        )
    return time.perf_counter() - start


def decisions_per_second(make_uow: Callable[[], UnitOfWork], ids: list[str], n: int) -> float:
    return n / one_per_tx_seconds(make_uow, ids, n)


def interleaved(
    rounds: int, n: int, ceiling: Callable[[int], float], *modes: Callable[[int, int], float]
) -> tuple[float, ...]:
    """Rates (per second) of the ceiling and of each mode, run in turn ``rounds`` times on
    ``n / rounds`` each, so that the machine's load drifts over all of them alike."""
    k = max(1, n // rounds)
    totals = [0.0] * (1 + len(modes))
    cpu = [0.0] * (1 + len(modes))
    for r in range(rounds):
        for m, run in enumerate((lambda k, _: ceiling(k), *modes)):
            started = time.process_time()
            totals[m] += run(k, r * k)
            cpu[m] += time.process_time() - started
    CPU_SECONDS[:] = cpu
    return tuple(k * rounds / t for t in totals)


CPU_SECONDS: list[float] = []  # the last ``interleaved`` run's process CPU time per part
CPU_RATIOS: dict[str, tuple[float, float]] = {}  # SQLite: one per tx, grouped (CPU time)


class _Recording:
    """A driver cursor that notes every statement it runs (about 0.3 µs per statement)."""

    def __init__(self, cursor: Any, log: Statements) -> None:
        self._cursor, self._log = cursor, log

    def execute(self, sql: str, params: Any = None, **options: Any) -> Any:
        # ``options``: the driver's own (psycopg's ``prepare``), passed on: a wrapper that
        # refused them would fail every group write it sees, and time the careful redo instead
        self._log.append(("execute", sql, params))
        if params is None:
            return self._cursor.execute(sql, **options)
        return self._cursor.execute(sql, params, **options)

    def executemany(self, sql: str, params: Any) -> Any:
        self._log.append(("executemany", sql, params))
        return self._cursor.executemany(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def record(factory: SqlUnitOfWorkFactory, log: Statements) -> None:
    connections = factory.connections
    take = connections.take

    def recorded() -> tuple[Any, Any]:
        pooled, cursor = take()
        return pooled, (cursor if isinstance(cursor, _Recording) else _Recording(cursor, log))

    connections.take = recorded  # type: ignore[method-assign]


def replay(cursor: Any, log: Statements, n: int) -> float:
    start = time.perf_counter()
    for method, sql, params in log:
        if params is None:
            cursor.execute(sql)
        else:
            getattr(cursor, method)(sql, params)
    return n / (time.perf_counter() - start)


def bench_sqlite(
    tmp: Path, n: int, episodes: int, rounds: int
) -> tuple[float, float, float, float]:
    path = tmp / "carepath.db"
    factory = uow_factory(f"sqlite:///{path}")
    ids = open_in_care(factory, episodes)
    factory.dispose()
    shutil.copy(path, tmp / "before.db")  # dispose checkpointed the WAL into the file
    factory = uow_factory(f"sqlite:///{path}")
    log: Statements = []
    record(factory, log)
    k = max(1, n // rounds)
    floor = k / one_per_tx_seconds(factory, ids, k)  # recorded: its statements are the floor
    factory.dispose()
    floor = replay(_sqlite(tmp / "before.db").cursor(), log, k)
    factory = uow_factory(f"sqlite:///{path}")
    ceiling = SqliteCeiling(tmp / "ceiling.db")
    top, rate, grouped = interleaved(
        rounds,
        n,
        ceiling.run,
        lambda m, first: one_per_tx_seconds(factory, ids, m, first),
        lambda m, first: grouped_seconds(factory, ids, m, first),
    )
    ceiling.close()
    factory.dispose()
    base, one, group = CPU_SECONDS  # all in this process: its CPU time, whatever the load
    CPU_RATIOS["SQLite"] = (base / one, base / group)
    return rate, floor, top, grouped


def _sqlite(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for pragma in SQLITE_PRAGMAS:  # the settings every carepath connection has
        db.execute(pragma)
    return db


class SqliteCeiling:
    """The raw driver with carepath's settings (its pragmas: WAL, synchronous, checkpoints).
    ``run(k)``: the time of ``k`` transactions, each updating one row and inserting one."""

    def __init__(self, path: Path) -> None:
        self.db = db = _sqlite(path)
        db.execute("CREATE TABLE a (id TEXT PRIMARY KEY, version INTEGER, payload TEXT)")
        db.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, a_id TEXT REFERENCES a, payload TEXT)")
        db.execute("INSERT INTO a VALUES ('x', 0, '')")
        self.done = 0

    def run(self, k: int) -> float:
        db = self.db
        start = time.perf_counter()
        for i in range(self.done, self.done + k):
            db.execute("BEGIN")
            db.execute("UPDATE a SET version = ?, payload = ? WHERE id = 'x'", (i, PAYLOAD))
            db.execute("INSERT INTO b (a_id, payload) VALUES ('x', ?)", (PAYLOAD,))
            db.execute("COMMIT")
        self.done += k
        return time.perf_counter() - start

    def close(self) -> None:
        self.db.close()


def bench_postgres(
    server: str, n: int, episodes: int, rounds: int
) -> tuple[float, float, float, float]:
    admin = psycopg.connect(_conninfo(server), autocommit=True)
    for name in ("carepath_bench", "carepath_bench_before"):
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.execute("CREATE DATABASE carepath_bench")
    url = make_url(server).set(database="carepath_bench").render_as_string(hide_password=False)
    factory = uow_factory(url)
    ids = open_in_care(factory, episodes)
    factory.dispose()
    admin.execute("CREATE DATABASE carepath_bench_before TEMPLATE carepath_bench")
    factory = uow_factory(url)
    with factory() as uow:  # warm the snapshot cache, as the SQLite run's is
        for episode_id in ids:
            uow.get_episode(episode_id)
    log: Statements = []
    record(factory, log)
    k = max(1, n // rounds)
    one_per_tx_seconds(factory, ids, k)  # recorded: its statements are the floor
    recorded = list(log)
    log.clear()
    before = make_url(url).set(database="carepath_bench_before")
    with psycopg.connect(_conninfo(before), autocommit=True, options="-c TimeZone=UTC") as db:
        floor = replay(db.cursor(), recorded, k)
    ceiling = PostgresCeiling(url)

    def one(m: int, first: int) -> float:
        seconds = one_per_tx_seconds(factory, ids, m, first)
        log.clear()  # recording goes on; nothing keeps it
        return seconds

    def grouped(m: int, first: int) -> float:
        seconds = grouped_seconds(factory, ids, m, first)
        log.clear()
        return seconds

    top, rate, group_rate = interleaved(rounds, n, ceiling.run, one, grouped)
    ceiling.close()
    factory.dispose()
    for name in ("carepath_bench", "carepath_bench_before"):
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()
    return rate, floor, top, group_rate


class PostgresCeiling:
    """psycopg with its defaults: BEGIN, update one row, insert one, COMMIT."""

    def __init__(self, url: str) -> None:
        self.db = db = psycopg.connect(_conninfo(url))
        db.execute("CREATE TABLE bench_a (id TEXT PRIMARY KEY, version INTEGER, payload TEXT)")
        db.execute(
            "CREATE TABLE bench_b (id SERIAL PRIMARY KEY, a_id TEXT REFERENCES bench_a,"
            " payload TEXT)"
        )
        db.execute("INSERT INTO bench_a VALUES ('x', 0, '')")
        db.commit()
        self.done = 0

    def run(self, k: int) -> float:
        db = self.db
        start = time.perf_counter()
        for i in range(self.done, self.done + k):
            db.execute("UPDATE bench_a SET version = %s, payload = %s WHERE id = 'x'", (i, PAYLOAD))
            db.execute("INSERT INTO bench_b (a_id, payload) VALUES ('x', %s)", (PAYLOAD,))
            db.commit()
        self.done += k
        return time.perf_counter() - start

    def close(self) -> None:
        self.db.close()


def _conninfo(url: Any) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=5, help="ceiling and decisions measured in turn, N times"
    )
    parser.add_argument(
        "--backend", choices=("both", "sqlite", "postgresql"), default="both", help="which to run"
    )
    args = parser.parse_args()
    n, episodes, rounds = args.decisions, args.episodes, args.rounds
    rows: list[tuple[str, tuple[float, float, float, float]]] = []

    store = InMemoryStore()
    ids = open_in_care(lambda: InMemoryUnitOfWork(store), episodes)
    memory = decisions_per_second(lambda: InMemoryUnitOfWork(store), ids, n)
    if args.backend != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(("SQLite", bench_sqlite(Path(tmp), n, episodes, rounds)))
    reason = postgres_available() if args.backend != "sqlite" else "not asked for (--backend)"
    if reason is None:
        with postgres_server() as server:
            rows.append(("PostgreSQL", bench_postgres(server, n, episodes, rounds)))

    print(
        f"\n{n:,} decisions (usecases.observe, no transition) over {episodes} episodes; "
        f"the engine alone (in memory) does {memory:,.0f} decisions/s\n"
    )
    print(
        f"{'backend':<11}{'decisions':<15}{'decisions/s':>12}{'µs each':>9}{'SQL floor/s':>13}"
        f"{'ceiling tx/s':>14}{'ratio':>7}{'target':>8}  result"
    )
    for name, (rate, floor, ceiling, grouped) in rows:
        target = TARGETS[name]
        for how, value, shown_floor in (
            ("one per tx", rate, f"{floor:,.0f}"),
            (f"{GROUP} per tx", grouped, "-"),
        ):
            ratio = value / ceiling
            print(
                f"{name:<11}{how:<15}{value:>12,.0f}{1e6 / value:>9.0f}{shown_floor:>13}"
                f"{ceiling:>14,.0f}{ratio:>7.0%}{target:>8.0%}  "
                f"{'PASS' if ratio >= target else 'FAIL'}"
            )
    for name, (_, _, ceiling, _) in rows:
        print(
            f"{name}: the engine alone is {memory / ceiling:.0%} of the ceiling — the best ratio"
            " any storage could reach (a decision costs at least its engine work)"
        )
    for name, (one, group) in CPU_RATIOS.items():
        print(
            f"{name} in CPU time (this process's, which other processes' load disturbs less): "
            f"one per tx {one:.0%}, {GROUP} per tx {group:.0%} of the ceiling's"
        )
    if reason is not None:
        print(f"PostgreSQL skipped: {reason}")
    print(
        "\nratio = decisions/s ÷ ceiling; SQL floor = the same statements replayed by the bare "
        "driver.\nA PostgreSQL started here runs with fsync off (-F), as in the tests."
    )


if __name__ == "__main__":
    main()
