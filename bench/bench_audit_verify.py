"""`carepath audit verify` on 100,000 episodes: the chains only, and the chains plus the rows.

The database is filled in two steps. First a real cohort of both pathways (``cohort.py``) is
replayed through the use cases into SQLite — the real write path, enrolments and all. Then
its rows are cloned until there are ``--episodes`` episodes: every episode id renamed in every
column (payloads, links, event ids), and every clone's chain re-hashed, so each clone is an
intact episode of its own (replaying 100,000 patients one transaction per decision would take
most of an hour on this machine; cloning takes a minute).

Then, in one run: the baseline — the rows step's own queries streamed and fetched, nothing
computed (what reading the rows costs at all); the rows step in-process; and the commands
``carepath audit verify --chain-only`` and ``carepath audit verify`` as subprocesses. Prints
wall time, episodes/s and the ratios. Asserts nothing (benchmarks are not tests).

Run: python bench/bench_audit_verify.py [--episodes 100000] [--base 800] [--keep DIR] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort, write_fls_cohort  # noqa: E402

TABLES = ("episodes", "audit_log", "observations", "timers", "tasks")
# One fixed audit key for every process of the bench (the replay, the clone, each verify), as a
# deployment gives every process of one database the same CAREPATH_AUDIT_KEY.
os.environ.setdefault("CAREPATH_AUDIT_KEY", "b3" * 32)
_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def replay_base(url: str, n: int, tmp: Path) -> float:
    """Replay n/2 L1–L2 and n/2 fracture liaison patients into the database: seconds taken."""
    from carepath.bootstrap import current_definitions
    from carepath.replay.runner import replay_many
    from carepath.replay.scenario import load_scenario
    from carepath.settings import Settings
    from storage.definitions import registry_for
    from storage.unit_of_work import uow_factory

    files = write_cohort(tmp / "l1", n // 2) + write_fls_cohort(tmp / "fls", n - n // 2)
    factory = uow_factory(url, Settings.from_env().audit_key())
    registry = registry_for(factory, current_definitions())
    start = time.perf_counter()
    replay_many([load_scenario(str(f)) for f in files], registry, factory)
    took = time.perf_counter() - start
    factory.dispose()
    return took


def clone(path: Path, episodes: int) -> int:
    """Copy the replayed episodes until there are ``episodes``: ids renamed, chains re-hashed."""
    from carepath.settings import Settings
    from pathway.audit import GENESIS, chain_hash

    key = Settings.from_env().audit_key()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    base: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for table in TABLES:
        cursor = db.execute(f"SELECT * FROM {table}")
        columns = [c[0] for c in cursor.description]
        base[table] = (columns, cursor.fetchall())
    ids = {row[0] for row in base["episodes"][1]}
    copies = -(-episodes // len(ids))  # the base itself is copy 0
    cols = {t: c for t, (c, _) in base.items()}
    pay, prev_c, hash_c = (cols["audit_log"].index(c) for c in ("payload", "prev_hash", "hash"))
    head_c = cols["episodes"].index("audit_hash")
    made = len(ids)
    for k in range(1, copies):
        if made >= episodes:
            break
        prefix = f"{k:05x}"

        def rename(value: Any, prefix: str = prefix) -> Any:
            if not isinstance(value, str):
                return value
            return _ID.sub(lambda m: prefix + m[0][5:] if m[0] in ids else m[0], value)

        out = {t: [[rename(v) for v in row] for row in rows] for t, (_, rows) in base.items()}
        heads: dict[str, str] = {}
        for row in out["audit_log"]:  # base rows are in (episode_id, seq) order: the PK
            prev = heads.get(row[0], GENESIS)
            row[prev_c], row[hash_c] = prev, chain_hash(key, prev, row[pay].encode())
            heads[row[0]] = row[hash_c]
        for row in out["episodes"]:
            row[head_c] = heads[row[0]]
        db.execute("BEGIN")
        for table in TABLES:
            marks = ", ".join("?" * len(cols[table]))
            names = ", ".join(f'"{c}"' for c in cols[table])
            db.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", out[table])
        db.execute("COMMIT")
        made += len(ids)
    db.close()
    return made


def copy_to_postgres(path: Path, server: str) -> tuple[str, float]:
    """The filled SQLite database's rows COPYed into a fresh, migrated PostgreSQL database."""
    import psycopg
    from sqlalchemy.engine import make_url

    from storage.database import upgrade

    def conninfo(url: str) -> str:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    with psycopg.connect(conninfo(server), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS carepath_bench_verify WITH (FORCE)")
        admin.execute("CREATE DATABASE carepath_bench_verify")
    url = (
        make_url(server).set(database="carepath_bench_verify").render_as_string(hide_password=False)
    )
    upgrade(url)
    start = time.perf_counter()
    source = sqlite3.connect(path)
    with psycopg.connect(conninfo(url)) as pg:
        pg.execute("SET TIME ZONE 'UTC'")  # SQLite's times are UTC text without an offset
        for table in ("definitions", *TABLES):
            cursor = source.execute(f"SELECT * FROM {table}")
            names = ", ".join(f'"{c[0]}"' for c in cursor.description)
            with pg.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in cursor:
                    copy.write_row(row)
        pg.execute("ANALYZE")
    source.close()
    return url, time.perf_counter() - start


def baseline(url: str, chunk: int = 2000) -> tuple[float, float, int]:
    """The rows step's statements streamed and fetched, nothing built: wall and CPU seconds,
    rows read."""
    from carepath.settings import Settings
    from storage.audit_rows import _statements
    from storage.unit_of_work import uow_factory

    factory = uow_factory(url, Settings.from_env().audit_key())
    dialect = factory.engine.dialect.name
    q = _statements(dialect)
    uow = factory()
    start, cpu, n = time.perf_counter(), time.process_time(), 0
    with uow:
        db = uow.connection()
        after = ""
        while True:
            rows = db.execute(q["episodes"], {"after": after, "limit": chunk}).fetchall()
            last = len(rows) < chunk
            params = {"after": after} if last else {"after": after, "last": rows[-1][0]}
            n += len(rows)
            for part in ("audit", "observations", "timers", "tasks"):
                n += len(db.execute(q[f"{part}:{'rest' if last else 'range'}"], params).fetchall())
            if last:
                break
            after = rows[-1][0]
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    factory.dispose()
    return took, cpu, n


def rows_step(url: str) -> tuple[float, float, Any]:
    from carepath.bootstrap import current_definitions
    from carepath.settings import Settings
    from storage.audit_rows import verify_uow_rows
    from storage.definitions import registry_for
    from storage.unit_of_work import uow_factory

    factory = uow_factory(url, Settings.from_env().audit_key())
    registry = registry_for(factory, current_definitions())
    uow = factory()
    start, cpu = time.perf_counter(), time.process_time()
    with uow:
        report = verify_uow_rows(uow, registry.get)
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    factory.dispose()
    return took, cpu, report


def chains_streamed(url: str) -> tuple[float, float, int]:
    """``stream_chains``: the chain check on the rows step's chunked stream (not yet wired)."""
    from carepath.settings import Settings
    from storage.audit_rows import stream_chains
    from storage.unit_of_work import uow_factory

    factory = uow_factory(url, Settings.from_env().audit_key())
    uow = factory()
    start, cpu = time.perf_counter(), time.process_time()
    with uow:
        bad = sum(
            not c.ok
            for c in stream_chains(uow.connection(), factory.engine.dialect.name, key=uow.audit_key)
        )
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    factory.dispose()
    return took, cpu, bad


def command(url: str, *args: str) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the command) and the output of a verify."""
    exe = Path(sys.executable).parent / "carepath"
    env = {**os.environ, "CAREPATH_DATABASE_URL": url}
    cpu0, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run([str(exe), "audit", "verify", *args], capture_output=True, env=env)
    took, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"audit verify {args} failed: {proc.stderr.decode()[:500]}")
    return took, cpu, proc.stdout.decode().strip()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, url: str, episodes: int) -> None:
    """Wall seconds (and CPU seconds: on a shared machine the steadier figure), episodes/s."""

    def line(what: str, wall: float, cpu: float, note: str) -> None:
        rate = episodes / wall
        print(f"  {what:<40} {wall:6.1f} s wall {cpu:6.1f} s CPU {rate:8.0f} episodes/s  {note}")

    print(f"{name}: {episodes} episodes")
    base_s, base_cpu, read = baseline(url)
    line("baseline: the rows step's queries", base_s, base_cpu, f"({read} rows fetched)")
    rows_s, rows_cpu, report = rows_step(url)
    line("rows step (in-process)", rows_s, rows_cpu,
         f"{rows_s / base_s:.1f}x baseline wall, {rows_cpu / base_cpu:.1f}x CPU (ok={report.ok})")  # fmt: skip
    streamed_s, streamed_cpu, bad = chains_streamed(url)
    line("chains on the same stream (in-process)", streamed_s, streamed_cpu, f"({bad} broken)")
    chain_s, chain_cpu, out = command(url, "--chain-only")
    line("carepath audit verify --chain-only", chain_s, chain_cpu, f"({out})")
    full_s, full_cpu, out = command(url)
    line("carepath audit verify (chains + rows)", full_s, full_cpu,
         f"{full_s / chain_s:.2f}x --chain-only ({out.splitlines()[-1]})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--base", type=int, default=800, help="patients replayed for real")
    parser.add_argument("--keep", type=Path, help="reuse (or leave) the database in this dir")
    parser.add_argument("--postgres", action="store_true", help="also on PostgreSQL (a copy)")
    args = parser.parse_args()
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench-audit-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"verify-{args.episodes}.db"
    url = f"sqlite:///{path}"
    if not path.exists():
        took = replay_base(url, args.base, tmp)
        t0 = time.perf_counter()
        made = clone(path, args.episodes)
        print(f"fill: {args.base} patients replayed in {took:.1f} s, cloned to {made} episodes "
              f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    db = sqlite3.connect(path)
    episodes, entries = (db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("episodes", "audit_log"))  # fmt: skip
    db.close()
    print(f"{episodes} episodes, {entries} audit entries ({path})")
    measure("SQLite", url, episodes)
    if args.postgres:
        from storage.postgres_cluster import postgres_server

        with postgres_server() as server:
            pg_url, took = copy_to_postgres(path, server)
            print(f"(copied into PostgreSQL in {took:.1f} s)")
            measure("PostgreSQL", pg_url, episodes)


if __name__ == "__main__":
    main()
