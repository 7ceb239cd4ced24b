"""Where one scheduler worker's time goes on PostgreSQL, in µs per fired timer.

Builds the bench's cohort (``tests.support.timer_cohort``: episodes left in intake with eleven
due timers each) in a throwaway cluster, then sweeps it in this process with one
``TimerWorker`` under cProfile, and prints the cumulative time of the functions that split the
work: the engine, the batch's reads, its writes, the claim and release, and the rest (Python
plumbing). Wall time per timer is printed too, measured once without the profiler. The split
(--split) runs one batch at a time, as workers do by default, so that its parts add up.

Run:  .venv/bin/python bench/profile_scheduler.py [--timers 20000] [--batch 100] [--lanes 2,3]
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scheduler import TARGET, raw_rate  # noqa: E402

from pathway.usecases import DefinitionRegistry  # noqa: E402
from scheduler.worker import TimerWorker  # noqa: E402
from storage.postgres_cluster import postgres_server  # noqa: E402
from storage.unit_of_work import uow_factory  # noqa: E402
from tests.support.timer_cohort import EXTRA, NOW, busy_definition, open_idle_episodes  # noqa: E402

DEFS = DefinitionRegistry(busy_definition())
SQL_PARTS = {"claim", "claim_snapshots", "preload", "flush", "release_many"}

# (label, pstats function-name suffix): cumulative time of the first match.
SPLIT = [
    ("sweep (all)", "worker.py", "sweep"),
    ("  claim (and read, PostgreSQL)", "worker.py", "_claim"),
    ("  batch preload (one read)", "batch.py", "preload"),
    ("  fire_timer use case (engine + audit + staging)", "usecases.py", "fire_timer"),
    ("    engine decide", "usecases.py", "decide"),
    ("  batch flush (group writes)", "batch.py", "flush"),
    ("  release_many", "claims.py", "release_many"),
    ("  missed appointments sweep", "missed.py", "sweep_missed"),
]


# (module, class or None, attribute, label): wrapped with wall-time accumulators (--split).
TIMED = [
    ("storage.claims", "ClaimStore", "claim", "claim (one statement)"),
    (
        "storage.claims",
        "ClaimStore",
        "claim_snapshots",
        "claim_snapshots (claim + read, PostgreSQL)",
    ),
    ("storage.batch", "BatchUnitOfWork", "preload", "preload (the batch's one read)"),
    ("pathway.usecases", None, "fire_timer", "fire_timer (engine, audit, staging)"),
    ("storage.batch", "BatchUnitOfWork", "commit", "  of which commit (change_rows)"),
    ("storage.batch", "BatchUnitOfWork", "flush", "flush (group writes)"),
    ("storage.batch_arrays", None, "_copy", "  of which COPY (tasks, audit entries)"),
    ("storage.batch_arrays", None, "_array", "  of which array statements (timers…)"),
    ("storage.claims", "ClaimStore", "release_many", "release_many"),
]


def wrap_timed() -> dict[str, float]:
    """Wrap TIMED with wall-time accumulators; return the totals (seconds) by label."""
    import importlib

    totals: dict[str, float] = {}
    for module, cls, attr, label in TIMED:
        owner = (
            getattr(importlib.import_module(module), cls)
            if cls
            else importlib.import_module(module)
        )
        inner = getattr(owner, attr)
        totals[label] = 0.0

        def timed(*a, _inner=inner, _label=label, **k):  # noqa: ANN002, ANN003, ANN202
            t = time.perf_counter()
            try:
                return _inner(*a, **k)
            finally:
                totals[_label] += time.perf_counter() - t

        setattr(owner, attr, timed)
    import scheduler.worker as w

    w.usecases = importlib.import_module("pathway.usecases")
    return totals


def fresh_db(url: str, name: str, template: str | None = None) -> str:
    info = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def run_once(
    url: str, batch: int, profile: cProfile.Profile | None, lanes: int = 1
) -> tuple[int, float]:
    factory = uow_factory(url)
    worker = TimerWorker(factory, DEFS, batch=batch, lanes=lanes)
    start = time.perf_counter()
    if profile is not None:
        profile.enable()
    fired = worker.sweep(NOW)
    if profile is not None:
        profile.disable()
    elapsed = time.perf_counter() - start
    worker.close(NOW)
    factory.dispose()
    return fired, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timers", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[], help="e.g. 25,50,200"
    )
    parser.add_argument("--plain", action="store_true", help="no profiled run")
    parser.add_argument(
        "--lanes", type=lambda v: [int(x) for x in v.split(",")], default=[], help="e.g. 1,2,3"
    )
    parser.add_argument("--split", action="store_true", help="wall-time split, no cProfile")
    args = parser.parse_args()
    episodes = -(-args.timers // (EXTRA + 1))
    with postgres_server() as url:
        template = fresh_db(url, "prof_sched_template")
        factory = uow_factory(template)
        open_idle_episodes(factory, DEFS, episodes)
        factory.dispose()
        for size in args.sizes:
            fired, wall = run_once(fresh_db(url, "prof_s", "prof_sched_template"), size, None)
            print(
                f"batch {size:>4}: {fired / wall:,.0f} timers/s ({wall / fired * 1e6:.0f} µs each)"
            )
        for lanes in args.lanes:  # alternating with one lane, so drift lands on both
            for n in (1, lanes):
                db = fresh_db(url, "prof_l", "prof_sched_template")
                fired, wall = run_once(db, args.batch, None, n)
                print(f"lanes {n}: {fired / wall:,.0f} timers/s ({wall / fired * 1e6:.0f} µs each)")
        fired, wall = run_once(fresh_db(url, "prof_a", "prof_sched_template"), args.batch, None)
        print(
            f"plain: {fired} timers in {wall:.2f} s = {fired / wall:,.0f}/s, "
            f"{wall / fired * 1e6:.0f} µs per timer (batch {args.batch})"
        )
        if args.plain:
            return
        if args.split:
            fresh_db(url, "prof_raw")
            raw = raw_rate(url, "prof_raw", fired, 1)
            budget = 1e6 / (TARGET * raw)
            print(
                f"raw claim loop (1 worker, same run): {raw:,.0f}/s = {1e6 / raw:.0f} µs per timer;"
                f" {TARGET:.0%} of it leaves {budget:.0f} µs per timer for ours"
            )
            totals = wrap_timed()
            fired, wall = run_once(fresh_db(url, "prof_c", "prof_sched_template"), args.batch, None)
            print(f"split (wall, µs per timer; {wall / fired * 1e6:.0f} in all):")
            for label, seconds in totals.items():
                print(f"  {label:<44} {seconds / fired * 1e6:8.1f}")
            rest = wall - sum(v for k, v in totals.items() if not k.startswith("  "))
            print(f"  {'rest (commit, due_timers, loop)':<44} {rest / fired * 1e6:8.1f}")
            sql = sum(v for k, v in totals.items() if k.split(" (")[0] in SQL_PARTS)
            print(
                f"  database statements (claim, preload, flush, release): {sql / fired * 1e6:.0f};"
                f" Python (use case, engine, audit entry, rows): {(wall - sql) / fired * 1e6:.0f}"
            )
            return
        profile = cProfile.Profile()
        fired, wall = run_once(fresh_db(url, "prof_b", "prof_sched_template"), args.batch, profile)
        stats = pstats.Stats(profile)
        print(f"profiled: {wall / fired * 1e6:.0f} µs per timer")
        table = stats.stats  # type: ignore[attr-defined]
        for label, file, name in SPLIT:
            hits = [v for (f, _, n), v in table.items() if f.endswith(file) and n == name]
            cum = sum(v[3] for v in hits)
            print(f"{label:<52} {cum / fired * 1e6:8.1f} µs/timer")
        stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
