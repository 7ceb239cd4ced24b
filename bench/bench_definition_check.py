"""Exhaustive safety check speed: abstract states explored and seconds on each shipped definition
(target: under 10 s on a 2-core machine), and the same with seeded mistakes of the tests, whole
and with ``--first`` (stopped at the first violation).

Run: python bench/bench_definition_check.py [--repeat 3]
Prints figures; asserts nothing (benchmarks are not tests).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathway.checking.explore import check_definition  # noqa: E402
from pathway.definition import (  # noqa: E402
    DEFAULT_DEFINITION,
    SHIPPED_DEFINITIONS,
    compile_definition,
    load_definition,
)

FLS = SHIPPED_DEFINITIONS / "fracture_liaison.json"


def _mutations() -> dict[str, dict]:
    base = orjson.loads(DEFAULT_DEFINITION.read_bytes())
    fls = orjson.loads(FLS.read_bytes())
    out = {}
    doc = copy.deepcopy(base)
    doc["rules"]["RA-RESOLVED"]["when"] = {"condition": "resolved"}
    out["discharge without osteoporosis care"] = doc
    doc = copy.deepcopy(base)
    doc["rules"]["AUG-KYPHOPLASTY"]["when"]["all"][0] = {"fact": "care_day", ">=": 60}
    out["kyphoplasty from care day 60"] = doc
    doc = copy.deepcopy(fls)
    del doc["rules"]["FLS-PERSISTING"]["when"]
    out["FLS: completed without aom_still_prescribed"] = doc
    doc = copy.deepcopy(fls)
    del doc["rules"]["FLS-VERY-HIGH"]["action"]
    out["FLS: very high risk without referral task"] = doc
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for path in (DEFAULT_DEFINITION, FLS):
        definition = load_definition(path)
        runs = [check_definition(definition) for _ in range(args.repeat)]
        seconds = [r.seconds for r in runs]
        report = runs[0]
        print(f"definition           {report.version}")
        print(f"abstract states      {report.states_explored}")
        print(f"events run           {report.events_run}")
        print(
            f"seconds              median {statistics.median(seconds):.2f}  (runs: "
            + ", ".join(f"{s:.2f}" for s in seconds)
            + ")"
        )
        print(f"events/s             {report.events_run / statistics.median(seconds):,.0f}")
        print(f"violations           {len(report.violations)}")
    for name, doc in _mutations().items():
        definition = compile_definition(doc)
        mutated = check_definition(definition)
        quick = check_definition(definition, first=True)  # `definition check --first`
        found = ", ".join(v.property for v in mutated.violations) or "none"
        print(
            f"mutant: {name:<38} {mutated.states_explored} states, "
            f"{mutated.seconds:.2f} s, found {found}; --first: {quick.states_explored} states, "
            f"{quick.seconds:.2f} s ({mutated.seconds / max(quick.seconds, 1e-3):.1f}× faster)"
        )


if __name__ == "__main__":
    main()
