"""Engine speed: decisions/s on the in-memory unit of work, and episodes/s for one
`carepath replay` call over a generated cohort of scenario files (target ≥ 7,500 episodes/s).

Run: python bench/bench_engine.py [--patients 10000] [--pathway l1-l2|fracture-liaison|all]
The L1–L2 cohort (default) and/or the fracture liaison cohort (bench/cohort.py), 1 process and
all cores each.

    python bench/bench_engine.py --engine-only [--patients 3000] [--rounds 5]

times the engine alone (``decide`` and ``open_episode``, no use case, audit or storage): the
calls one in-process replay of the L1–L2 cohort makes are recorded, then re-run ``--rounds``
times; prints the best round's CPU µs per episode (the engine is pure, so re-running is exact).
Prints figures; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort, write_fls_cohort  # noqa: E402

from pathway import usecases  # noqa: E402
from pathway.definition import load_definition  # noqa: E402
from pathway.unit_of_work import InMemoryUnitOfWork  # noqa: E402
from pathway.usecases import DefinitionRegistry  # noqa: E402


def decisions_per_second(n_episodes: int = 3000) -> tuple[int, float]:
    """Full episodes through the use cases on one in-memory unit of work; count decisions."""
    defs = DefinitionRegistry(load_definition())
    uow = InMemoryUnitOfWork()
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    decisions = 0
    start = time.perf_counter()
    for i in range(n_episodes):
        ep = usecases.open_episode(
            uow, defs, {"age": 70 + i % 20, "first_fracture": True}, at=t0, now=t0, actor="b"
        ).outcome.episode_id
        usecases.observe(
            uow, defs, ep, {"fracture_levels": ["L1"], "pain_score": 7}, at=t0, now=t0, actor="b"
        )
        d1 = t0 + timedelta(days=1)
        usecases.observe(
            uow,
            defs,
            ep,
            {"mri_done": True, "vertebral_collapse_pct": 20, "neuro_exam_done": True},
            at=d1,
            now=d1,
            actor="b",
        )
        d30 = t0 + timedelta(days=30)
        fired = usecases.fire_due_timers(uow, defs, d30, episode_id=ep)
        usecases.observe(
            uow,
            defs,
            ep,
            {"pain_score": 2, "dxa_done": True, "osteoporosis_referral_placed": True},
            at=d30,
            now=d30,
            actor="b",
        )
        decisions += 4 + len(fired)
    return decisions, time.perf_counter() - start


def engine_calls(n: int) -> list[tuple[Any, tuple[Any, ...]]]:
    """Every engine call (function, arguments) one in-process replay of ``n`` L1–L2 files makes."""
    from carepath.bootstrap import current_definitions
    from carepath.replay.runner import replay_files
    from carepath.settings import Settings
    from pathway import enrolment

    calls: list[tuple[Any, tuple[Any, ...]]] = []
    patched = [(usecases, "decide"), (usecases, "_open"), (enrolment, "decide")]
    patched.append((enrolment, "open_episode"))
    originals = [getattr(m, a) for m, a in patched]
    for (module, attr), f in zip(patched, originals, strict=True):

        def recorded(*a: Any, _f: Any = f) -> Any:
            calls.append((_f, a))
            return _f(*a)

        setattr(module, attr, recorded)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = [str(p) for p in write_cohort(Path(tmp), n)]
            replay_files(paths, DefinitionRegistry(current_definitions(Settings.from_env())), 1)
    finally:
        for (module, attr), f in zip(patched, originals, strict=True):
            setattr(module, attr, f)
    return calls


def engine_only(n: int, rounds: int) -> None:
    calls = engine_calls(n)
    if not calls:  # a compiled core calls decide directly: there is nothing to record
        raise SystemExit("--engine-only records the calls of a plain (not compiled) install")
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for f, a in calls:
            f(*a)
        best = min(best, time.process_time() - start)
    print(
        f"engine only (decide + open_episode), {n} L1–L2 episodes, {len(calls)} calls, best of "
        f"{rounds}: {best / n * 1e6:.1f} CPU µs/episode ({best / len(calls) * 1e6:.2f} µs/call)"
    )


COHORTS = {"l1-l2": write_cohort, "fracture-liaison": write_fls_cohort}


def replay_cohort(n: int, workers: int | None, pathway: str = "l1-l2") -> float:
    with tempfile.TemporaryDirectory() as tmp:
        paths = COHORTS[pathway](Path(tmp), n)
        cmd = [sys.executable, "-m", "carepath.cli", "replay", "--json", *map(str, paths)]
        if workers is not None:
            cmd[4:4] = ["--workers", str(workers)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"replay failed ({proc.returncode}): {proc.stderr.decode()[:500]}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument(
        "--pathway",
        choices=[*COHORTS, "all"],
        default="l1-l2",
        help="which generated cohort to replay (default l1-l2; all: both, one after the other)",
    )
    parser.add_argument("--engine-only", action="store_true", help="time the engine alone")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.engine_only:
        engine_only(args.patients if args.patients != 10000 else 3000, args.rounds)
        return
    decisions, secs = decisions_per_second()
    print(
        f"engine decisions/s (in-memory unit of work, use cases + audit): {decisions / secs:,.0f}  ({decisions} in {secs:.2f} s)"
    )
    pathways = list(COHORTS) if args.pathway == "all" else [args.pathway]
    for pathway in pathways:
        one = replay_cohort(args.patients, 1, pathway)
        print(
            f"carepath replay, {pathway} cohort, {args.patients} files, 1 process:   {args.patients / one:,.0f} episodes/s ({one:.2f} s)"
        )
        many = replay_cohort(args.patients, None, pathway)
        print(
            f"carepath replay, {pathway} cohort, {args.patients} files, all cores:   {args.patients / many:,.0f} episodes/s ({many:.2f} s)"
        )
        print(f"ratio to target (all cores): {args.patients / many / 7500:.2f}×")
    print("target: ≥ 7,500 episodes/s  (SpiffWorkflow 3.2 baseline measured at ~755 episodes/s)")


if __name__ == "__main__":
    main()
