"""Where a replayed L1–L2 episode's CPU time goes, in µs per episode, in one process.

Replays the generated L1–L2 cohort (bench/cohort.py) in this process on the in-memory unit of
work (`replay_files`, --workers 1, startup excluded), once plain and once with the named
functions wrapped in CPU-time (process_time) accumulators. Runs under either installation, so
that the same script profiles the before- and the after-version:

    /work/venv-base/bin/python bench/profile_replay.py --patients 3000
    /work/venv-bench/bin/python bench/profile_replay.py --patients 3000

The functions an installation lacks (enrolment, declared derived values) are skipped.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort  # noqa: E402

# (module, attribute, label): wrapped where they are looked up at call time.
WATCHED = [
    ("pathway.usecases", "_save", "use case _save (decision + audit + enrolments, one txn)"),
    ("pathway.usecases", "entry_for", "  audit entries (entry_for)"),
    ("pathway.usecases", "enrol", "  enrolment (enrol)"),
    ("pathway.enrolment", "triggered", "    enrolment triggered? (checked on every save)"),
    ("pathway.enrolment", "open_episode", "    FLS episode opened (open_episode)"),
    ("pathway.usecases", "close_enrolled", "  close_enrolled"),
    ("pathway.usecases", "decide", "use case decide (engine)"),
    ("pathway.usecases", "_open", "use case open (engine open_episode)"),
    ("pathway.usecases", "fire_due_timers", "due timers fired (the firings' _apply included)"),
    ("carepath.replay.runner", "verify_chain", "runner: the chain verified (verify_chain)"),
    ("carepath.replay.scenario", "load_scenario", "runner: load_scenario (read, parse, checks)"),
    ("pathway.work", "derived_values", "  declared derived values (derived_values)"),
]


def setup() -> tuple[Callable[..., Any], Any]:
    """replay_files and the definitions, wherever this installation keeps them."""
    from pathway.usecases import DefinitionRegistry

    try:
        from carepath.bootstrap import current_definitions
        from carepath.replay.runner import replay_files
        from carepath.settings import Settings

        return replay_files, DefinitionRegistry(current_definitions(Settings.from_env()))
    except ImportError:  # before the package split (615beb0)
        from carepath.replay import replay_files  # type: ignore[no-redef]
        from pathway.definition import load_definition

        return replay_files, DefinitionRegistry(load_definition())


def wrap(acc: dict[str, list[float]]) -> None:
    for module_name, attr, label in WATCHED:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        f = getattr(module, attr, None)
        if f is None:
            continue
        cell = acc.setdefault(label, [0.0, 0])

        def timed(*a: Any, _f: Callable[..., Any] = f, _c: list[float] = cell, **k: Any) -> Any:
            t = time.process_time()
            try:
                return _f(*a, **k)
            finally:
                _c[0] += time.process_time() - t
                _c[1] += 1

        setattr(module, attr, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=3000)
    args = parser.parse_args()
    n = args.patients
    replay_files, definitions = setup()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in write_cohort(Path(tmp), n)]
        replay_files(paths[:50], definitions, 1)  # warm
        t0 = time.process_time()
        replay_files(paths, definitions, 1)
        plain = time.process_time() - t0
        acc: dict[str, list[float]] = {}
        wrap(acc)
        t0 = time.process_time()
        replay_files(paths, definitions, 1)
        wrapped = time.process_time() - t0
    print(f"{n} L1–L2 episodes, one process, CPU time, startup excluded:")
    print(f"  plain:   {plain / n * 1e6:6.0f} µs/episode")
    print(f"  wrapped: {wrapped / n * 1e6:6.0f} µs/episode (the wrappers' own cost included)")
    for label, (secs, calls) in acc.items():
        print(
            f"  {label:56} {secs / n * 1e6:6.1f} µs/episode  "
            f"({calls / n:.2f} calls/episode, {secs / max(calls, 1) * 1e6:.1f} µs/call)"
        )


if __name__ == "__main__":
    main()
