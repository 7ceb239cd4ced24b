"""The protocol documents (PROTOCOL.md, FLS.md, SCENARIOS.md, FACTS.md), found one way.

They live beside the checkout, in ``../shared/protocol`` relative to the repository root, and
are not copied into it (a copy would drift from the specification it checks against).
``protocol_file`` skips the test that needs a missing one, naming the path it looked at —
also under ``CI=true``: unlike PostgreSQL and the browser, which ``.ci/run`` installs, these
documents are not the repository's to provide, and every rule they list is also pinned by the
tests of ``tests/unit/test_rules.py`` and ``tests/unit/test_fls_rules.py`` themselves.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PROTOCOL_DIR = REPOSITORY.parent / "shared" / "protocol"
SCENARIO_DIR = REPOSITORY / "tests" / "scenarios"  # the shipped scenario files


def protocol_file(name: str) -> Path:
    """The protocol document ``name`` (e.g. ``"PROTOCOL.md"``), or the test is skipped."""
    path = PROTOCOL_DIR / name
    if not path.exists():
        pytest.skip(f"{path} not found: the protocol is checked out beside the repository")
    return path
