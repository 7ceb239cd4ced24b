"""Where the wall-clock time of ``replay --database sqlite`` goes, worker by worker.

``carepath replay --database`` splits the cohort over forked workers, each deciding a chunk and
then writing it while it holds the workers' turn lock (``carepath.replay.grouped``). This
replays N generated L1–L2 files (bench/cohort.py, seed 7) in one call of ``replay_into`` (a new
file, built aside, or with ``--existing`` an existing empty one) and records, per chunk, when
its worker began deciding, asked for the turn, got it and let it go. It prints the wall time
split into: setting up (schema, pool start), the workers' deciding, writing, waiting for the
turn and idle (no chunk left, or the pipeline's start and end), and the CPU the whole took.

Run: python bench/profile_replay_turns.py [--patients 2000] [--workers 2] [--existing]
     [--chunks-per-worker 4] [--tail-chunk 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort  # noqa: E402

from carepath.bootstrap import current_definitions  # noqa: E402
from carepath.replay import grouped  # noqa: E402
from carepath.replay.into_database import replay_into  # noqa: E402
from carepath.settings import Settings  # noqa: E402
from pathway.usecases import DefinitionRegistry  # noqa: E402

LOG: Path | None = None


class TimedTurn:
    """The turn lock, noting when it was asked for, taken and let go."""

    def __init__(self, turn: Any, marks: list[float]) -> None:
        self.turn, self.marks = turn, marks

    def __enter__(self) -> None:
        self.cpu = [time.process_time()]
        self.marks.append(time.perf_counter())
        if self.turn is not None:
            self.turn.__enter__()
        self.marks.append(time.perf_counter())

    def __exit__(self, *exc: Any) -> None:
        if self.turn is not None:
            self.turn.__exit__(*exc)
        self.marks.append(time.perf_counter())
        self.cpu.append(time.process_time())


def timed_chunk(real: Any) -> Any:
    def replay_chunk(chunk: Any, definitions: Any, factory: Any, notices: Any, turn: Any = None):
        marks = [time.perf_counter()]
        start_cpu = time.process_time()
        timed = TimedTurn(turn, marks)
        done = real(chunk, definitions, factory, notices, timed)
        timed.cpu.insert(0, start_cpu)
        assert LOG is not None
        with open(LOG, "a") as out:
            out.write(
                f"{os.getpid()} {len(chunk)} " + " ".join(map(repr, marks + timed.cpu)) + "\n"
            )
        return done

    return replay_chunk


def cpu() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main() -> None:
    global LOG
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--existing", action="store_true", help="an existing empty file")
    parser.add_argument("--chunks-per-worker", type=int, default=grouped.CHUNKS_PER_WORKER)
    parser.add_argument(
        "--tail-chunk", type=int, default=grouped.TAIL_CHUNK,
        help=f"the smallest of the last chunks (≥ {grouped.PER_TRANSACTION}: all chunks equal)",
    )  # fmt: skip
    args = parser.parse_args()
    grouped.CHUNKS_PER_WORKER = args.chunks_per_worker
    grouped.TAIL_CHUNK = args.tail_chunk
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(p) for p in write_cohort(Path(tmp) / "cohort", args.patients)]
        settings = Settings.from_env()
        defs = DefinitionRegistry(current_definitions(settings))
        LOG = Path(tmp) / "turns.log"
        grouped.replay_chunk = timed_chunk(grouped.replay_chunk)  # type: ignore[assignment]
        db = Path(tmp) / "replay.db"
        if args.existing:
            os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))
        cpu0, start = cpu(), time.perf_counter()
        replay_into(f"sqlite:///{db}", paths, defs, settings.audit_key(), workers=args.workers)
        wall, used = time.perf_counter() - start, cpu() - cpu0
        rows = [line.split() for line in LOG.read_text().splitlines()]
    n = len(paths)
    chunks = [(int(r[0]), int(r[1]), *map(float, r[2:])) for r in rows]
    first, last = min(c[2] for c in chunks), max(c[5] for c in chunks)
    workers = sorted({c[0] for c in chunks})
    decide = sum(c[3] - c[2] for c in chunks)
    wait = sum(c[4] - c[3] for c in chunks)
    write = sum(c[5] - c[4] for c in chunks)
    span = last - first
    idle = span * len(workers) - decide - wait - write
    kind = "an existing empty file" if args.existing else "a new file, built aside"
    print(f"{n} files into {kind}, {len(workers)} workers, {len(chunks)} chunks "
          f"(tail ≥ {grouped.TAIL_CHUNK})")  # fmt: skip
    print(f"  wall {wall:.2f} s: setting up {first - start:.2f} s, chunks {span:.2f} s, "
          f"closing {start + wall - last:.2f} s; CPU {used:.2f} s = {used / wall:.2f} cores, "
          f"{1e6 * used / n:,.0f} µs an episode")  # fmt: skip
    total = span * len(workers)
    for name, seconds in (("deciding", decide), ("writing (holding the turn)", write),
                          ("waiting for the turn", wait), ("idle (no chunk yet or left)", idle)):  # fmt: skip
        print(f"  workers {name:<28} {seconds:6.2f} s = {seconds / total:4.0%} of their time")
    print(f"  the turn was held {write / span:.0%} of the chunks' span")
    decide_cpu = sum(c[7] - c[6] for c in chunks)
    write_cpu = sum(c[8] - c[7] for c in chunks)
    rest = used - decide_cpu - write_cpu
    print(f"  CPU an episode: deciding {1e6 * decide_cpu / n:,.0f} µs, writing and verifying "
          f"{1e6 * write_cpu / n:,.0f} µs, the rest (set-up, pool, results) {1e6 * rest / n:,.0f} µs")  # fmt: skip


if __name__ == "__main__":
    main()
