"""Issue 13's replay targets, each against its baseline measured in the same run.

SpiffWorkflow 3.2's harness (../shared/bench/spiff_bench.py, episodes/s of its own fracture
BPMN: create → wait → serialize → deserialize → complete) runs interleaved with carepath's
figures (Spiff, carepath, Spiff, carepath, …), so that this shared machine's load hits both:

- ``carepath replay --json`` of N generated L1–L2 files in one call (all cores, the default)
  ≥ 10× Spiff's median episodes/s;
- ``carepath replay --json --workers 1``: ≥ 7,500 episodes/s in one process (wall, startup
  included; beside it the in-process rate, ``replay_files`` on one core, startup excluded,
  and the floor bench/replay_floor.py measures: what remains of an episode whatever the
  engine does, which shows whether this machine allows the goal at all);
- ``carepath replay --json --database sqlite:///…`` (a fresh file each run) ≥ 3× Spiff's
  in-memory rate. Beside it, on the same files: the in-memory replay on all cores (the
  ceiling of a replay that also writes), the write cost per episode that separates the two,
  and with ``--db-baseline OTHER_CAREPATH`` the same command of another checkout (before/after
  in one run), with ``--db-existing`` into an existing empty file (written in place, not
  built aside as a new file is). ``--database-only`` skips the other targets.

Run: python bench/bench_replay_targets.py --spiff /work/venv-spiff/bin/python \\
         [--carepath /work/venv-replay/bin/carepath] [--patients 10000] [--db-patients 2000]
         [--runs 3] [--database-only] [--db-baseline /work/venv/bin/carepath] [--db-existing]

SpiffWorkflow lives in its own venv (``pip install 'SpiffWorkflow==3.*'``): carepath does not
depend on it. Prints each target with its measured ratio and PASS/FAIL; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort  # noqa: E402

SPIFF_HARNESS = Path(__file__).resolve().parents[2] / "shared" / "bench" / "spiff_bench.py"


def spiff_rate(python: str, harness: Path) -> float:
    """The median episodes/s the Spiff harness prints."""
    proc = subprocess.run([python, str(harness)], capture_output=True, text=True)
    found = re.search(r"median (\d+)", proc.stdout)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"spiff harness failed: {proc.stderr[-500:]}")
    return float(found.group(1))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# The commands run as an installation runs them, with their bytecode cached: an environment that
# sets PYTHONDONTWRITEBYTECODE (this sandbox does) compiles carepath's own modules from source
# at every start, ~0.15 s of each command here; ``warm_up`` writes the cache once, untimed.
AS_INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def warm_up(exe: str, cohort: Path, names: list[str], tmp: str) -> None:
    """One small run of each timed command, so that every module they import is compiled."""
    database = f"sqlite:///{tmp}/warm-up-{abs(hash(exe))}.sqlite"
    for extra in ([], ["--database", database]):
        subprocess.run(
            [exe, "replay", "--json", *extra, *names[:3]], capture_output=True, cwd=cohort,
            env=AS_INSTALLED, check=True,
        )  # fmt: skip


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (the process and its workers) of one command."""
    cpu0, start = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, cwd=cwd, env=AS_INSTALLED)
    elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed, cpu


def in_process_rate(carepath: str, cohort: Path) -> float:
    """Episodes per CPU-second of ``replay_files`` on one core, startup excluded."""
    python = Path(carepath).parent / "python"
    code = (
        "import glob, time\n"
        "from carepath.bootstrap import current_definitions\n"
        "from carepath.replay.runner import replay_files\n"
        "from carepath.settings import Settings\n"
        "from pathway.usecases import DefinitionRegistry\n"
        "d = DefinitionRegistry(current_definitions(Settings.from_env()))\n"
        f"paths = sorted(glob.glob({str(cohort)!r} + '/*.json'))\n"
        "replay_files(paths[:100], d, 1)\n"
        "t = time.process_time(); replay_files(paths, d, 1)\n"
        "print(len(paths) / (time.process_time() - t))\n"
    )
    # run from the cohort's directory: ``python -c`` puts the working directory first on
    # sys.path, and from a checkout it would time that checkout instead of the installation
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=cohort.parent
    )
    if proc.returncode != 0:
        raise SystemExit(f"in-process replay failed: {proc.stderr[-500:]}")
    return float(proc.stdout.split()[-1])


def floor_us(carepath: str) -> float:
    """The CPU µs per episode that bench/replay_floor.py measures whatever the engine does
    (reading the files, every entry's canonical JSON and keyed hash, the output's JSON), run
    under the same installation."""
    python = Path(carepath).parent / "python"
    script = Path(__file__).resolve().with_name("replay_floor.py")
    proc = subprocess.run(
        [str(python), str(script), "--patients", "2000"], capture_output=True, text=True,
        cwd=tempfile.gettempdir(),
    )  # fmt: skip
    found = re.search(r"floor total ([\d.]+) µs", proc.stdout)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"replay_floor.py failed: {proc.stderr[-500:]}")
    return float(found.group(1))


def verdict(value: float, goal: float) -> str:
    return "PASS" if value >= goal else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spiff", required=True, help="python of a venv with SpiffWorkflow 3.*")
    parser.add_argument("--spiff-harness", default=str(SPIFF_HARNESS))
    parser.add_argument("--carepath", default=str(Path(sys.executable).parent / "carepath"))
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument("--db-patients", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-only", action="store_true", help="only replay --database")
    parser.add_argument("--db-baseline", help="another carepath to run replay --database with")
    parser.add_argument(
        "--db-existing",
        action="store_true",
        help="also replay --database into an existing (empty) file: written in place, not "
        "built aside as a new file is",
    )
    args = parser.parse_args()
    if args.database_only:
        database_targets(args)
        return
    runs, exe, harness = max(1, args.runs), args.carepath, Path(args.spiff_harness)

    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "l1l2"
        names = [p.name for p in write_cohort(cohort, args.patients)]
        db_names = names[: args.db_patients]
        warm_up(exe, cohort, names, tmp)
        spiff: list[float] = []
        many: list[float] = []
        one: list[float] = []
        one_cpu: list[float] = []
        inproc: list[float] = []
        db: list[float] = []
        for run in range(runs):
            spiff.append(spiff_rate(args.spiff, harness))
            wall, _ = timed([exe, "replay", "--json", *names], cohort)
            many.append(len(names) / wall)
            wall, cpu = timed([exe, "replay", "--json", "--workers", "1", *names], cohort)
            one.append(len(names) / wall)
            one_cpu.append(len(names) / cpu)
            inproc.append(in_process_rate(exe, cohort))
            url = f"sqlite:///{tmp}/replay-{run}.sqlite"
            wall, _ = timed([exe, "replay", "--json", "--database", url, *db_names], cohort)
            db.append(len(db_names) / wall)
        spiff.append(spiff_rate(args.spiff, harness))

    med = statistics.median
    s = med(spiff)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end (1/5/15 min, {os.cpu_count()} cores): {load}")
    print(
        f"L1–L2 cohort: {args.patients} files (bench/cohort.py, seed 7); {runs} runs, interleaved"
    )
    print(f"SpiffWorkflow 3.2 (spiff_bench.py): median {s:,.0f} episodes/s (runs: {_fmt(spiff)})")
    r = med(many) / s
    print(
        f"replay --json, {args.patients} files, all cores: median {med(many):,.0f} episodes/s "
        f"(runs: {_fmt(many)}) = {r:.2f}× Spiff; goal ≥ 10× → {verdict(r, 10)}"
    )
    print(
        f"replay --json --workers 1: median {med(one):,.0f} episodes/s wall, startup included "
        f"(runs: {_fmt(one)}), {med(one_cpu):,.0f} per CPU-second; goal ≥ 7,500 → "
        f"{verdict(med(one), 7500)}"
    )
    print(
        f"  in process (replay_files, one core, startup excluded): median {med(inproc):,.0f} "
        f"episodes per CPU-second (runs: {_fmt(inproc)}) → {verdict(med(inproc), 7500)}"
    )
    floor = floor_us(exe)
    print(
        f"  the floor alone (bench/replay_floor.py): {floor:.0f} CPU µs per episode → at most "
        f"{1e6 / floor:,.0f} episodes/s on one core with an engine that cost nothing, against "
        f"the {1e6 / 7500:.0f} µs that 7,500/s allows"
        + (": this machine forbids the goal" if 1e6 / floor < 7500 else "")
    )
    r = med(db) / s
    print(
        f"replay --json --database sqlite (file), {len(db_names)} files: median {med(db):,.0f} "
        f"episodes/s (runs: {_fmt(db)}) = {r:.2f}× Spiff in memory; goal ≥ 3× → {verdict(r, 3)}"
    )


def database_targets(args: argparse.Namespace) -> None:
    """``replay --database`` against Spiff, interleaved, with its ceiling and write cost."""
    exe, harness, runs = args.carepath, Path(args.spiff_harness), max(1, args.runs)
    spiff: list[float] = []
    db: list[float] = []
    memory: list[float] = []
    before: list[float] = []
    db_cpu: list[float] = []  # CPU-seconds per episode, the process and its workers
    memory_cpu: list[float] = []
    before_cpu: list[float] = []
    existing: list[float] = []
    existing_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cohort = Path(tmp) / "l1l2"
        names = [p.name for p in write_cohort(cohort, args.db_patients)]
        warm_up(exe, cohort, names, tmp)
        if args.db_baseline:
            warm_up(args.db_baseline, cohort, names, tmp)
        for run in range(runs):
            spiff.append(spiff_rate(args.spiff, harness))
            url = f"sqlite:///{tmp}/replay-{run}.sqlite"
            wall, cpu = timed([exe, "replay", "--json", "--database", url, *names], cohort)
            db.append(len(names) / wall)
            db_cpu.append(cpu / len(names))
            wall, cpu = timed([exe, "replay", "--json", *names], cohort)
            memory.append(len(names) / wall)
            memory_cpu.append(cpu / len(names))
            if args.db_existing:
                path = Path(tmp) / f"existing-{run}.sqlite"
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
                cmd = [exe, "replay", "--json", "--database", f"sqlite:///{path}", *names]
                wall, cpu = timed(cmd, cohort)
                existing.append(len(names) / wall)
                existing_cpu.append(cpu / len(names))
            if args.db_baseline:
                url = f"sqlite:///{tmp}/before-{run}.sqlite"
                cmd = [args.db_baseline, "replay", "--json", "--database", url, *names]
                wall, cpu = timed(cmd, cohort)
                before.append(len(names) / wall)
                before_cpu.append(cpu / len(names))
        spiff.append(spiff_rate(args.spiff, harness))
    med = statistics.median
    s, d, m = med(spiff), med(db), med(memory)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end (1/5/15 min, {os.cpu_count()} cores): {load}")
    print(f"SpiffWorkflow 3.2 (spiff_bench.py): median {s:,.0f} episodes/s (runs: {_fmt(spiff)})")
    print(
        f"replay --json --database sqlite (file), {len(names)} files: median {d:,.0f} "
        f"episodes/s (runs: {_fmt(db)}) = {d / s:.2f}× Spiff in memory; goal ≥ 3× → "
        f"{verdict(d / s, 3)}"
    )
    if before:
        b = med(before)
        print(
            f"  before ({args.db_baseline}): median {b:,.0f} episodes/s (runs: {_fmt(before)}) "
            f"= {b / s:.2f}× Spiff; this one {d / b:.2f}× it; CPU per episode "
            f"{med(before_cpu) * 1e6:,.0f} µs before, {med(db_cpu) * 1e6:,.0f} µs now"
        )
    if existing:
        e = med(existing)
        print(
            f"  into an existing empty file (written in place, WAL): median {e:,.0f} "
            f"episodes/s (runs: {_fmt(existing)}) = {e / s:.2f}× Spiff; CPU per episode "
            f"{med(existing_cpu) * 1e6:,.0f} µs (a new file, built aside: {med(db_cpu) * 1e6:,.0f})"
        )
    print(
        f"  ceiling, replay --json on the same files (in memory, all cores, startup included): "
        f"median {m:,.0f} episodes/s = {m / s:.2f}× Spiff; the database run is {d / m:.0%} of it"
    )
    cores = os.cpu_count() or 1
    dc, mc = med(db_cpu) * 1e6, med(memory_cpu) * 1e6
    print(
        f"  CPU per episode (startup included): {mc:,.0f} µs in memory, {dc:,.0f} µs with the "
        f"database (writing and verifying: {dc - mc:,.0f} µs); on {cores} idle cores at most "
        f"{cores * 1e6 / dc:,.0f} episodes/s = {cores * 1e6 / dc / s:.2f}× Spiff; 3× Spiff "
        f"({3 * s:,.0f}/s) needs ≤ {cores * 1e6 / (3 * s):,.0f} µs of CPU per episode"
    )


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


if __name__ == "__main__":
    main()
