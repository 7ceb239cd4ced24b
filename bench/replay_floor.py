"""The floor of a replayed episode: the Python work that remains whatever the engine does.

Replays the L1–L2 cohort once in this process (``replay_files``, one core) and captures every
audit entry's body and every output, then times, per episode, in CPU µs: reading and parsing
the files (orjson only, no checks), the canonical JSON of every audit entry (warm, as in the
replay, which serialises a body just after building it: all of them again at once, cold from
memory, cost more), its keyed hash (written, then verified: twice, or once where an in-memory
record is verified from the link ``entry_for`` computed), and the output's JSON. Their sum is what an engine that cost
nothing would still spend; beside it, the whole replay and the engine's use cases alone.

Run: python bench/replay_floor.py [--patients 3000]   (under the installation to measure)
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort  # noqa: E402


def cpu(f: Callable[[], Any], n: int) -> float:
    """CPU µs per episode of ``f`` (best of three)."""
    best = float("inf")
    for _ in range(3):
        t = time.process_time()
        f()
        best = min(best, time.process_time() - t)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=3000)
    args = parser.parse_args()
    from carepath.bootstrap import current_definitions
    from carepath.replay import runner
    from carepath.replay.scenario import load_scenario
    from carepath.settings import Settings
    from pathway import audit, usecases
    from pathway.usecases import DefinitionRegistry

    definitions = DefinitionRegistry(current_definitions(Settings.from_env()))
    n = args.patients
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in write_cohort(Path(tmp), n)]
        runner.replay_files(paths[:100], definitions, 1)  # warm
        whole = cpu(lambda: runner.replay_files(paths, definitions, 1), n)
        load = cpu(lambda: [load_scenario(p) for p in paths], n)
        read = cpu(lambda: [orjson.loads(Path(p).read_bytes()) for p in paths], n)

        episodes: list[list[dict[str, Any]]] = []  # each episode's entry bodies
        real_dumps = orjson.dumps

        class Capture:  # the audit module's orjson, recording what it serialises
            OPT_SORT_KEYS = orjson.OPT_SORT_KEYS
            loads = staticmethod(orjson.loads)

            @staticmethod
            def dumps(body: Any, option: int = 0) -> bytes:
                episodes[-1].append(body)
                return real_dumps(body, option=option)

        audit.orjson = Capture  # type: ignore[assignment]
        try:
            outputs = []
            for p in paths:
                episodes.append([])
                outputs.append(runner.replay(load_scenario(p), definitions).output)
        finally:
            audit.orjson = orjson  # type: ignore[assignment]
        bodies = [b for episode in episodes for b in episode]
        sort = orjson.OPT_SORT_KEYS
        cold = cpu(lambda: [orjson.dumps(b, option=sort) for b in bodies], n)
        # In the replay each body is serialised just after it is built, while in the cache:
        # each episode's bodies serialised twice running, less once, is that warm second pass.
        twice = cpu(lambda: [orjson.dumps(b, option=sort) for e in episodes for b in e + e], n)
        payload = twice - cold
        payloads = [orjson.dumps(b, option=sort) for b in bodies]
        key = audit.process_key()
        # written, then verified; an installation whose in-memory records are sealed (verified
        # from the link entry_for computed, pathway.audit._sealed) hashes each entry once
        times = 1 if "sealed" in getattr(audit.AuditRecord, "__dataclass_fields__", {}) else 2
        hashes = times * cpu(lambda: [key.chain_hash(audit.GENESIS, p) for p in payloads], n)
        indent = orjson.OPT_INDENT_2
        output = cpu(lambda: [orjson.dumps(o, option=indent) for o in outputs], n)

        spent = [0.0]
        real_decide = usecases.decide

        def timed_decide(*a: Any) -> Any:
            t = time.process_time()
            try:
                return real_decide(*a)
            finally:
                spent[0] += time.process_time() - t

        usecases.decide = timed_decide  # type: ignore[assignment]
        try:
            runner.replay_files(paths, definitions, 1)
        finally:
            usecases.decide = real_decide  # type: ignore[assignment]
        engine = spent[0] / n * 1e6

    floor = read + payload + hashes + output
    print(f"{n} L1–L2 episodes, one process, CPU µs per episode ({len(bodies) / n:.2f} entries):")
    print(f"  whole replay (replay_files):            {whole:7.1f}  → {1e6 / whole:,.0f}/s")
    print(f"  engine's decide() alone (event → decision): {engine:7.1f}")
    print(f"  load_scenario (read, parse, checks):    {load:7.1f}")
    print(f"  floor: read + orjson.loads of the files {read:7.1f}")
    print(f"  floor: canonical JSON of every entry    {payload:7.1f}  (warm; {cold:.1f} cold)")
    how = "written + verified" if times == 2 else "written once (sealed)"
    print(f"  {'floor: its keyed hash, ' + how:40}{hashes:7.1f}")
    print(f"  floor: the output's JSON                {output:7.1f}")
    print(
        f"  floor total {floor:.1f} µs → at most {1e6 / floor:,.0f} episodes/s if all else cost "
        f"nothing; the 7,500/s goal leaves {1e6 / 7500 - floor:.1f} µs for the engine, the "
        f"use cases and the runner, which now take {whole - floor:.1f}"
    )


if __name__ == "__main__":
    main()
