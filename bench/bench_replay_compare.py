"""Before/after: the SAME generated L1–L2 cohort through `carepath replay --json` of two
installations in one run, interleaved (A/B/A/B…), with one worker process and with the default
(all cores); median episodes/s of each and the ratio after/before. Also, interleaved the same
way, engine decisions/s (bench_engine.decisions_per_second under each installation's Python),
and the fracture liaison cohort's episodes/s on the after-installation (the before one has no
such pathway).

Run: python bench/bench_replay_compare.py --before /work/venv-base/bin/carepath \\
         --after /work/venv-bench/bin/carepath [--patients 10000] [--runs 3]

The after-version's output carries `enrolled` keys (FLS-ENROL-SPINE opens a fracture liaison
episode in the same transaction); the outputs are checked to be identical apart from them.
Prints figures; asserts nothing (benchmarks are not tests). A ratio below 0.95 is a regression.
Beside wall-clock episodes/s it prints episodes per CPU-second (user + sys of the replay process
and its workers, from getrusage): on a shared machine that figure is the steadier one.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort, write_fls_cohort  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent


def replay_cmd(exe: str, names: list[str], workers: int | None) -> list[str]:
    cmd = [exe, "replay", "--json"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return cmd + names


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_replay(
    exe: str, names: list[str], cwd: Path, workers: int | None
) -> tuple[float, float, bytes]:
    """Wall seconds, CPU seconds (user + sys of the process and its workers), stdout."""
    cpu0 = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(replay_cmd(exe, names, workers), capture_output=True, cwd=cwd)
    elapsed = time.perf_counter() - start
    cpu = children_cpu() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{exe} replay failed ({proc.returncode}): {proc.stderr.decode()[:500]}")
    return elapsed, cpu, proc.stdout


def summary(out: bytes) -> tuple[list[Any], int, int, int]:
    """The episodes without `enrolled` keys and without the definition version (the L1–L2
    file gained declarations, so its content hash changed); episodes, steps with `enrolled`,
    steps with an error."""
    episodes = orjson.loads(out)
    enrolled = errors = 0
    for episode in episodes:
        episode["definition"].pop("version", None)
        for step in episode["steps"]:
            if step.pop("enrolled", None):
                enrolled += 1
            if step.get("error"):
                errors += 1
    return episodes, len(episodes), enrolled, errors


def decisions_per_second(exe: str) -> tuple[float, float]:
    """bench_engine.decisions_per_second under the Python beside `exe` (its installation):
    decisions per wall second and per CPU second of that process."""
    python = Path(exe).parent / "python"
    code = (
        f"import sys, time; sys.path.insert(0, {str(BENCH_DIR)!r}); import bench_engine; "
        "c = time.process_time(); d, s = bench_engine.decisions_per_second(); "
        "print(d / s, d / (time.process_time() - c))"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{python}: decisions/s failed: {proc.stderr[-500:]}")
    wall, cpu = proc.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="carepath executable of the baseline")
    parser.add_argument("--after", required=True, help="carepath executable under test")
    parser.add_argument("--patients", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each, interleaved (≥ 3)")
    parser.add_argument(
        "--workers",
        choices=["1", "all", "both"],
        default="both",
        help="1: one process; all: the default (all cores); both (default)",
    )
    parser.add_argument("--no-fls", action="store_true", help="skip the fracture liaison cohort")
    parser.add_argument("--no-decisions", action="store_true", help="skip engine decisions/s")
    parser.add_argument("--no-replay", action="store_true", help="skip the replays")
    args = parser.parse_args()
    runs = max(args.runs, 3)
    modes: list[int | None] = {"1": [1], "all": [None], "both": [1, None]}[args.workers]
    versions = {"before": args.before, "after": args.after}

    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_replay:
            replays(args, versions, modes, runs, Path(tmp))

    if not args.no_decisions:
        dec: dict[str, list[float]] = {"before": [], "after": []}
        dec_cpu: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(runs):
            for label, exe in versions.items():
                wall, cpu = decisions_per_second(exe)
                dec[label].append(wall)
                dec_cpu[label].append(cpu)
        print(f"engine decisions/s (bench_engine.decisions_per_second), {runs} runs each:")
        for label in versions:
            print(
                f"  {label + ':':7} median {statistics.median(dec[label]):,.0f} wall "
                f"(runs: {fmt(dec[label])}); {statistics.median(dec_cpu[label]):,.0f} per "
                f"CPU-second (runs: {fmt(dec_cpu[label])})"
            )
        ratio = statistics.median(dec["after"]) / statistics.median(dec["before"])
        ratio_cpu = statistics.median(dec_cpu["after"]) / statistics.median(dec_cpu["before"])
        print(f"  ratio after/before: {ratio:.3f} wall; {ratio_cpu:.3f} CPU")


def replays(
    args: argparse.Namespace,
    versions: dict[str, str],
    modes: list[int | None],
    runs: int,
    tmp: Path,
) -> None:
    n = args.patients
    l12 = tmp / "l1l2"
    names = [p.name for p in write_cohort(l12, n)]
    print(f"L1–L2 cohort: {n} files (bench/cohort.py, seed 7), the same files for both")

    # Correctness first (untimed): same episodes, no errors, outputs equal but `enrolled`.
    seen = {}
    for label, exe in versions.items():
        _, _, out = timed_replay(exe, names, l12, None)
        seen[label] = summary(out)
        _, count, enrolled, errors = seen[label]
        print(
            f"  {label:6}: {count} episodes, {enrolled} steps with `enrolled`, "
            f"{errors} steps with an error"
        )
    same = seen["before"][0] == seen["after"][0]
    print(f"  outputs identical apart from `enrolled`: {'yes' if same else 'NO'}")
    del seen

    for workers in modes:
        mode = "1 process (--workers 1)" if workers == 1 else "all cores (default)"
        rates: dict[str, list[float]] = {"before": [], "after": []}
        cpu_rates: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(runs):
            for label, exe in versions.items():
                elapsed, cpu, _ = timed_replay(exe, names, l12, workers)
                rates[label].append(n / elapsed)
                cpu_rates[label].append(n / cpu)
        before = statistics.median(rates["before"])
        after = statistics.median(rates["after"])
        cpu_before = statistics.median(cpu_rates["before"])
        cpu_after = statistics.median(cpu_rates["after"])
        print(f"carepath replay --json, L1–L2, {mode}, {runs} runs each, interleaved:")
        for label, wall, cpu in (("before", before, cpu_before), ("after", after, cpu_after)):
            print(
                f"  {label + ':':7} median {wall:,.0f} episodes/s wall (runs: "
                f"{fmt(rates[label])}); {cpu:,.0f} episodes per CPU-second "
                f"(runs: {fmt(cpu_rates[label])})"
            )
        verdict = "regression > 5 %" if after / before < 0.95 else "no regression (≥ 0.95)"
        print(
            f"  ratio after/before: {after / before:.3f} wall  → {verdict}; "
            f"{cpu_after / cpu_before:.3f} CPU"
        )

    if not args.no_fls:
        fls = tmp / "fls"
        fls_names = [p.name for p in write_fls_cohort(fls, n)]
        _, _, out = timed_replay(args.after, fls_names, fls, None)
        _, count, _, errors = summary(out)
        print(
            f"fracture liaison cohort: {count} files (bench/cohort.py write_fls_cohort, "
            f"seed 7), {errors} steps with an error; after only"
        )
        for workers in modes:
            mode = "1 process (--workers 1)" if workers == 1 else "all cores (default)"
            fls_rates = []
            fls_cpu = []
            for _ in range(runs):
                elapsed, cpu, _ = timed_replay(args.after, fls_names, fls, workers)
                fls_rates.append(n / elapsed)
                fls_cpu.append(n / cpu)
            print(
                f"  carepath replay --json, FLS, {mode}: median "
                f"{statistics.median(fls_rates):,.0f} episodes/s wall (runs: {fmt(fls_rates)}); "
                f"{statistics.median(fls_cpu):,.0f} episodes per CPU-second"
            )


if __name__ == "__main__":
    main()
