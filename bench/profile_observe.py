"""The engine's cost per persisted decision of ``bench_storage`` (an Observe of a pain score on
an episode in conservative_care: rules evaluated, nothing transitions), in memory.

The same episodes (``bench_storage.open_in_care``) and the same decision (``usecases.observe``
of ``{"pain_score": i % 10}``, ``now`` from a clock that advances) on an ``InMemoryUnitOfWork``:
prints process CPU µs per decision (best of ``--rounds``); ``--profile`` adds a cProfile of one
round, by own time. Run from /tmp (a checkout's directory would import that checkout):

    python bench/profile_observe.py [--decisions 20000] [--episodes 200] [--rounds 5] [--profile]

Prints figures; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_storage import CLOCK, DEFS, open_in_care  # noqa: E402

from pathway import usecases  # noqa: E402
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork  # noqa: E402


def run(store: InMemoryStore, ids: list[str], n: int, first: int) -> float:
    """Process CPU seconds of ``n`` decisions, as ``bench_storage``'s ``decide`` makes them."""
    clock, observe = CLOCK.now, usecases.observe
    started = time.process_time()
    for i in range(first, first + n):
        now = clock()
        observe(
            InMemoryUnitOfWork(store),
            DEFS,
            ids[i % len(ids)],
            {"pain_score": i % 10},
            at=now,
            now=now,
            actor="bench",
        )
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one round")
    args = parser.parse_args()
    store = InMemoryStore()
    ids = open_in_care(lambda: InMemoryUnitOfWork(store), args.episodes)
    n = args.decisions
    run(store, ids, 1000, 0)  # warm
    best = min(run(store, ids, n, (r + 1) * n) for r in range(args.rounds))
    print(f"in memory: {best / n * 1e6:.1f} µs CPU per decision (best of {args.rounds} x {n:,})")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        run(store, ids, n, 10 * n)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
