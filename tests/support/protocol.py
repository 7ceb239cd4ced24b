"""The protocol documents (PROTOCOL.md, FLS.md, SCENARIOS.md, FACTS.md), found one way.

They live beside the checkout, in ``../shared/protocol`` relative to the repository root, and
are not copied into it. ``protocol_file`` skips the test that needs a missing one, naming the
path it looked at — or fails it when ``CI=true``, as the PostgreSQL fixture does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PROTOCOL_DIR = REPOSITORY.parent / "shared" / "protocol"
SCENARIO_DIR = REPOSITORY / "tests" / "scenarios"  # the shipped scenario files


def protocol_file(name: str) -> Path:
    """The protocol document ``name`` (e.g. ``"PROTOCOL.md"``), or the test is skipped."""
    path = PROTOCOL_DIR / name
    if not path.exists():
        reason = f"{path} not found: the protocol is checked out beside the repository"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the protocol is required: {reason}")
        pytest.skip(reason)
    return path
