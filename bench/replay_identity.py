"""Before/after proof that a speed change left the audit log byte-identical.

Replays generated L1–L2 and fracture liaison cohorts and the shipped scenario files in memory,
with event and episode ids drawn from a counter and a fixed audit key, and prints the number
of audit entries and one sha256 over every entry's canonical payload and chain hash. Run it
under both installations; equal digests mean equal payload bytes and hashes:

    /work/venv/bin/python bench/replay_identity.py          # main
    /work/venv-replay/bin/python bench/replay_identity.py   # this branch

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cohort import write_cohort, write_fls_cohort  # noqa: E402

SCENARIOS = Path(__file__).resolve().parents[1] / "tests" / "scenarios"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=3000)
    args = parser.parse_args()
    from carepath.bootstrap import current_definitions
    from carepath.replay.runner import replay
    from carepath.replay.scenario import load_scenario
    from carepath.settings import Settings
    from pathway import usecases
    from pathway.audit import AuditKey
    from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
    from pathway.usecases import DefinitionRegistry

    counter = itertools.count()
    usecases.new_event_id = lambda now=None: f"ev-{next(counter)}"  # type: ignore[assignment]
    usecases.uuid = SimpleNamespace(  # type: ignore[assignment]
        uuid4=lambda: SimpleNamespace(hex=f"ep-{next(counter)}")
    )
    usecases.time_ordered_id = lambda now: f"ep-{next(counter)}"  # type: ignore[assignment]
    definitions = DefinitionRegistry(current_definitions(Settings.from_env()))
    store = InMemoryStore(audit_key=AuditKey(b"k" * 32))
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            *write_cohort(Path(tmp) / "l1l2", args.patients),
            *write_fls_cohort(Path(tmp) / "fls", args.patients // 3),
            *sorted(SCENARIOS.glob("*.json")),
        ]
        for path in paths:
            replay(load_scenario(path), definitions, lambda: InMemoryUnitOfWork(store))
    digest, entries = hashlib.sha256(), 0
    for records in store.audit.values():
        for record in records:
            digest.update(record.payload)
            digest.update(record.hash.encode())
            entries += 1
    print(f"{len(paths)} scenarios, {entries} audit entries, sha256 {digest.hexdigest()}")


if __name__ == "__main__":
    main()
