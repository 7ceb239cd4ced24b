"""XES export of 100,000 episodes: wall time and peak memory at 10k and at 100k, same run.

The log is real: a cohort of generated scenarios (``carepath.replay.cohort``, both pathways, the
FLS episodes the L1–L2 ones enrol included) is replayed through the use cases on the in-memory
unit of work, and its audit entries are the templates; 100,000 episodes are then bulk-inserted
by copying them under new episode ids (SQLAlchemy Core executemany; chains are not re-hashed,
which the export does not read). ``carepath audit export --format xes --out FILE`` then runs
in a subprocess at 10,000 episodes and again at 100,000, and its wall time and peak RSS
(the child's VmHWM) are printed with their ratio: flat memory is a ratio near 1 while time
grows ~10×. The export of the empty schema is the baseline (interpreter and imports). On
SQLite the peak includes the page cache, which ``storage.database`` caps at 64 MiB: it is full
at 10,000 episodes already. One pathway's export (``--pathway``) at 100,000 closes the table.

Run:  .venv/bin/python bench/bench_xes_export.py [--episodes 100000] [--only sqlite|postgresql]
PostgreSQL: CAREPATH_TEST_POSTGRES_URL, else a throwaway cluster started here. Prints a table;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import random  # noqa: E402

from sqlalchemy import insert  # noqa: E402

from carepath.bootstrap import current_definitions  # noqa: E402
from carepath.replay.cohort import fls_scenario, scenario  # noqa: E402
from carepath.replay.runner import replay  # noqa: E402
from carepath.replay.scenario import parse_scenario  # noqa: E402
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork  # noqa: E402
from pathway.usecases import DefinitionRegistry  # noqa: E402
from storage.database import create_engine_for, upgrade  # noqa: E402
from storage.postgres_cluster import postgres_server  # noqa: E402
from storage.tables import AuditRow, EpisodeRow  # noqa: E402

Template = tuple[dict[str, Any], list[dict[str, Any]]]  # episode row, its audit rows


def templates(n: int = 60, seed: int = 11) -> list[Template]:
    """Real episodes and audit entries: n scenarios of each pathway, replayed in memory."""
    import orjson

    definitions = DefinitionRegistry(current_definitions())
    rng = random.Random(seed)
    store = InMemoryStore()
    for i in range(n):
        for made in (scenario(i, rng), fls_scenario(i, rng)):
            replay(
                parse_scenario(orjson.dumps(made)), definitions, lambda: InMemoryUnitOfWork(store)
            )
    out: list[Template] = []
    uow = InMemoryUnitOfWork(store)
    with uow:
        for episode_id in uow.episode_ids():
            e = uow.get_episode(episode_id)
            row = {"definition_version": e.definition_version, "pathway": e.pathway,
                   "state": e.state, "opened_at": e.opened_at, "state_entered_at": e.state_entered_at,
                   "audit_hash": e.audit_hash, "version": e.version, "facts": {},
                   "remembered": {}, "links": [], "patient_ref": e.patient_ref}  # fmt: skip
            entries = [
                {"seq": r.seq, "event_id": r.event_id, "kind": r.kind, "actor": r.actor,
                 "at": r.at, "recorded_at": r.recorded_at, "state_from": r.state_from,
                 "state_to": r.state_to, "definition_version": e.definition_version,
                 "payload": r.payload.decode(), "prev_hash": r.prev_hash, "hash": r.hash}
                for r in uow.audit_records(episode_id)
            ]  # fmt: skip
            out.append((row, entries))
    return out


def insert_episodes(url: str, cohort: list[Template], first: int, last: int) -> int:
    """Episodes ``first``..``last``-1 (template i mod len, opened i minutes later); entries."""
    engine = create_engine_for(url)
    written = 0
    try:
        for start in range(first, last, 2000):
            episodes, entries = [], []
            for i in range(start, min(last, start + 2000)):
                row, audit = cohort[i % len(cohort)]
                shift = timedelta(minutes=i)
                eid = f"bench-{i:07d}"
                episodes.append(row | {"id": eid, "opened_at": row["opened_at"] + shift,
                                       "state_entered_at": row["state_entered_at"] + shift,
                                       "patient_ref": f"MRN-{i:07d}"})  # fmt: skip
                entries += [
                    a | {"episode_id": eid, "event_id": f"{eid}:{a['seq']}",
                         "at": a["at"] + shift, "recorded_at": a["recorded_at"] + shift}
                    for a in audit
                ]  # fmt: skip
            with engine.begin() as conn:
                conn.execute(insert(EpisodeRow.__table__), episodes)  # type: ignore[arg-type]
                conn.execute(insert(AuditRow.__table__), entries)  # type: ignore[arg-type]
            written += len(entries)
    finally:
        engine.dispose()
    return written


# The child's own high-water mark (VmHWM of its address space after exec), written at exit:
# wait4's ru_maxrss would also count the pages of this process it was forked from.
_PEAK = """import atexit, os
def _peak():
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM"))
    open(os.environ["XES_BENCH_PEAK"], "w").write(line.split()[1])
atexit.register(_peak)
from carepath.cli import main
main()
"""


def export(url: str, out: Path, *more: str) -> tuple[float, float, int]:
    """``carepath audit export --format xes`` in a subprocess: (seconds, peak MiB, bytes)."""
    peak = out.with_suffix(".peak")
    env = {**os.environ, "CAREPATH_DATABASE_URL": url, "XES_BENCH_PEAK": str(peak)}
    command = [sys.executable, "-c", _PEAK, "audit", "export", "--format", "xes", *more]
    started = time.perf_counter()
    subprocess.run([*command, "--out", str(out)], env=env, check=True)
    seconds = time.perf_counter() - started
    return seconds, int(peak.read_text()) / 1024, out.stat().st_size


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'xes.db'}"
        return
    with postgres_server() as server:
        from tests.conftest import _admin, _database  # the suite's throwaway-database helpers

        url = _database(server, "bench_xes")
        _admin(server, "DROP DATABASE IF EXISTS bench_xes", "CREATE DATABASE bench_xes")
        yield url


def run(kind: str, episodes: int, cohort: list[Template]) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        upgrade(url)
        out = Path(tmp) / "log.xes"
        base = export(url, out)
        print(
            f"{kind:10} {0:>8} episodes {0:>9} entries {base[0]:7.1f} s {base[1]:7.1f} MiB  (baseline: imports)"
        )
        rows, done = 0, 0
        results = []
        for target in (episodes // 10, episodes):
            started = time.perf_counter()
            rows += insert_episodes(url, cohort, done, target)
            done = target
            inserted = time.perf_counter() - started
            seconds, mib, size = export(url, out)
            results.append((seconds, mib))
            print(f"{kind:10} {done:>8} episodes {rows:>9} entries {seconds:7.1f} s {mib:7.1f} MiB"
                  f"  ({size / 2**20:.0f} MiB of XES, {rows / seconds:,.0f} entries/s; inserted in {inserted:.0f} s)")  # fmt: skip
        seconds, mib, size = export(url, out, "--pathway", "fracture-liaison")
        print(f"{kind:10} {done:>8} episodes, --pathway fracture-liaison: {seconds:7.1f} s {mib:7.1f} MiB"
              f"  ({size / 2**20:.0f} MiB of XES)")  # fmt: skip
        (t1, m1), (t2, m2) = results
        print(f"{kind:10} 10× the episodes: {t2 / t1:.1f}× the time, {m2 / m1:.2f}× the peak memory"
              f" ({m2 - base[1]:+.1f} MiB over the baseline at {episodes:,})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    cohort = templates()
    per = sum(len(a) for _, a in cohort) / len(cohort)
    print(f"templates: {len(cohort)} replayed episodes, {per:.1f} audit entries each on average")
    for kind in ("sqlite", "postgresql"):
        if args.only in (None, kind):
            run(kind, args.episodes, cohort)


if __name__ == "__main__":
    main()
