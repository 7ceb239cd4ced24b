"""A longer run of the API's schemathesis check and of the input fuzzers than the suite's:
cases run, failures, and seconds, with the suite's bounded run measured first as the baseline.

Run: python bench/bench_hostile_inputs.py [--examples 400] [--fuzz 500]
Prints figures; asserts nothing (benchmarks are not tests). The fuzzers use PostgreSQL too
(a throwaway cluster, or CAREPATH_TEST_POSTGRES_URL).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "tests/integration/api/test_api_schema.py"
FUZZ = "tests/integration/test_fuzz_inputs.py"


def run(test: str, env: dict[str, str]) -> tuple[str, str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", test],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    counted = re.findall(r"^(schemathesis: .*|fuzzed inputs: .*)$", done.stdout, re.M)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    return (counted[-1] if counted else "(no count)"), summary, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=400, help="schemathesis, per operation")
    parser.add_argument("--fuzz", type=int, default=500, help="hypothesis, per fuzzer")
    args = parser.parse_args()
    for name, test, var, baseline, longer in (
        ("schemathesis", SCHEMA, "CAREPATH_SCHEMATHESIS_EXAMPLES", "40", str(args.examples)),
        ("fuzzers", FUZZ, "CAREPATH_FUZZ_EXAMPLES", "25", str(args.fuzz)),
    ):
        base = run(test, {var: baseline})
        long = run(test, {var: longer})
        print(f"{name}: suite ({var}={baseline}): {base[0]} | {base[1]} | {base[2]:.0f} s")
        print(f"{name}: long  ({var}={longer}): {long[0]} | {long[1]} | {long[2]:.0f} s "
              f"({long[2] / base[2]:.1f}× the suite's time)")  # fmt: skip


if __name__ == "__main__":
    main()
