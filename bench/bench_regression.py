"""Issue 13's "no regression elsewhere": two installations side by side, interleaved in one run.

Times, under a BEFORE and an AFTER installation (each a venv with carepath installed, e.g. main
and a branch), alternating before/after so that this shared machine's load hits both:

- ``carepath --help`` wall time (target: after < 0.25 s);
- ``carepath definition check --pathway P`` wall time for each shipped pathway (target: after
  < 10 s and not slower than before by more than the noise, 10 %);
- the worklist's HTTP p95 with ``--episodes`` episodes on SQLite (each installation's own
  ``bench/bench_worklist.py``, so that each inserts rows into its own schema; target p95 < 50 ms
  and within 10 % of before).

Run: python bench/bench_regression.py --before /work/venv/bin --after /work/venv-new/bin
         [--runs 5] [--episodes 200000]
Prints each figure, after ÷ before and PASS/FAIL; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import gettempdir

PATHWAYS = ("l1-l2-compression-fracture", "fracture-liaison")
NOISE = 1.10  # after may be this much slower than before and still count as no regression


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # definition check exits 1 on a violation: still timed
        raise SystemExit(f"{' '.join(cmd[:4])} failed ({proc.returncode}): {proc.stderr[-400:]}")
    return elapsed


def repository(bin_dir: Path) -> Path:
    """Where an installation's code lives (editable installs: its checkout, with bench/)."""
    code = "import carepath, pathlib; print(pathlib.Path(carepath.__file__).parents[1])"
    out = subprocess.run(  # not from a checkout: python -c puts the working directory first
        [str(bin_dir / "python"), "-c", code], capture_output=True, text=True, cwd=gettempdir()
    )
    return Path(out.stdout.strip())


def worklist_p95(bin_dir: Path, episodes: int) -> float:
    """The worst HTTP p95 (ms) over the worklist queries of bench_worklist.py, on SQLite."""
    script = repository(bin_dir) / "bench" / "bench_worklist.py"
    cmd = [str(bin_dir / "python"), str(script), "--only", "sqlite", "--episodes", str(episodes)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    rows = re.findall(r"^SQLite .*?([\d.]+)\s+(?:ok|SLOW)$", proc.stdout, re.M)
    if proc.returncode != 0 or not rows:
        raise SystemExit(f"bench_worklist failed under {bin_dir}: {proc.stderr[-400:]}")
    return max(float(r) for r in rows)


def interleaved(measure: Callable[[Path], float], before: Path, after: Path, runs: int):
    b, a = [], []
    for _ in range(runs):
        b.append(measure(before))
        a.append(measure(after))
    return statistics.median(b), statistics.median(a)


def report(label: str, before: float, after: float, unit: str, limit: float) -> None:
    ok = after < limit and after <= before * NOISE
    print(
        f"{label:<58} before {before:8.3f}{unit}  after {after:8.3f}{unit}  "
        f"after/before {after / before:5.2f}  limit {limit:g}{unit}  {'PASS' if ok else 'FAIL'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="bin/ of the baseline venv")
    parser.add_argument("--after", type=Path, required=True, help="bin/ of the venv to judge")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=200_000)
    args = parser.parse_args()
    before, after = args.before, args.after

    help_b, help_a = interleaved(
        lambda d: wall([str(d / "carepath"), "--help"]), before, after, args.runs * 2
    )
    report("carepath --help (s)", help_b, help_a, " s", 0.25)
    for pathway in PATHWAYS:
        check_b, check_a = interleaved(
            lambda d, p=pathway: wall([str(d / "carepath"), "definition", "check", "--pathway", p]),
            before,
            after,
            max(1, args.runs // 2),
        )
        report(f"definition check --pathway {pathway} (s)", check_b, check_a, " s", 10.0)
    p95_b, p95_a = interleaved(
        lambda d: worklist_p95(d, args.episodes), before, after, max(1, args.runs // 2)
    )
    report(f"worklist HTTP p95, {args.episodes:,} episodes (ms)", p95_b, p95_a, " ms", 50.0)


if __name__ == "__main__":
    main()
