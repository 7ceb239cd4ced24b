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

Run: python bench/bench_audit_verify.py [--episodes 100000] [--base 800] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
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
_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")


def replay_base(url: str, n: int, tmp: Path) -> float:
    """Replay n/2 L1–L2 and n/2 fracture liaison patients into the database: seconds taken."""
    from carepath.bootstrap import current_definitions
    from carepath.replay.runner import replay_many
    from carepath.replay.scenario import load_scenario
    from storage.definitions import registry_for
    from storage.unit_of_work import uow_factory

    files = write_cohort(tmp / "l1", n // 2) + write_fls_cohort(tmp / "fls", n - n // 2)
    factory = uow_factory(url)
    registry = registry_for(factory, current_definitions())
    start = time.perf_counter()
    replay_many([load_scenario(str(f)) for f in files], registry, factory)
    took = time.perf_counter() - start
    factory.dispose()
    return took


def clone(path: Path, episodes: int) -> int:
    """Copy the replayed episodes until there are ``episodes``: ids renamed, chains re-hashed."""
    from pathway.audit import GENESIS, chain_hash

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
            row[prev_c], row[hash_c] = prev, chain_hash(prev, row[pay].encode())
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


def baseline(url: str, chunk: int = 2000) -> tuple[float, int]:
    """The rows step's statements streamed and fetched, nothing built: seconds, rows read."""
    from storage.audit_rows import _statements
    from storage.unit_of_work import uow_factory

    factory = uow_factory(url)
    dialect = factory.engine.dialect.name
    q = _statements(dialect)
    uow = factory()
    start, n = time.perf_counter(), 0
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
    took = time.perf_counter() - start
    factory.dispose()
    return took, n


def rows_step(url: str) -> tuple[float, Any]:
    from carepath.bootstrap import current_definitions
    from storage.audit_rows import verify_uow_rows
    from storage.definitions import registry_for
    from storage.unit_of_work import uow_factory

    factory = uow_factory(url)
    registry = registry_for(factory, current_definitions())
    uow = factory()
    start = time.perf_counter()
    with uow:
        report = verify_uow_rows(uow, registry.get)
    took = time.perf_counter() - start
    factory.dispose()
    return took, report


def command(url: str, *args: str) -> tuple[float, str]:
    exe = Path(sys.executable).parent / "carepath"
    env = {**os.environ, "CAREPATH_DATABASE_URL": url}
    start = time.perf_counter()
    proc = subprocess.run([str(exe), "audit", "verify", *args], capture_output=True, env=env)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"audit verify {args} failed: {proc.stderr.decode()[:500]}")
    return took, proc.stdout.decode().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--base", type=int, default=800, help="patients replayed for real")
    parser.add_argument("--keep", type=Path, help="reuse (or leave) the database in this dir")
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
    print(f"SQLite: {episodes} episodes, {entries} audit entries ({path})")
    base_s, read = baseline(url)
    print(f"  baseline, the rows step's queries streamed: {base_s:6.1f} s  ({read} rows)")
    rows_s, report = rows_step(url)
    print(f"  rows step in-process:                       {rows_s:6.1f} s  {episodes / rows_s:8.0f} episodes/s  "
          f"{rows_s / base_s:.1f}x baseline  (ok={report.ok}, {report.episodes} episodes)")  # fmt: skip
    chain_s, out = command(url, "--chain-only")
    print(f"  carepath audit verify --chain-only:         {chain_s:6.1f} s  {episodes / chain_s:8.0f} episodes/s  ({out})")  # fmt: skip
    full_s, out = command(url)
    print(f"  carepath audit verify (chains + rows):      {full_s:6.1f} s  {episodes / full_s:8.0f} episodes/s  "
          f"{full_s / chain_s:.2f}x --chain-only  ({out.splitlines()[-1]})")  # fmt: skip


if __name__ == "__main__":
    main()
