"""Nothing in Python knows a shipped pathway: the protocols live in their definition files.

Every fact, request, close reason, derived value and state of every shipped definition is
looked for in the code of the engine, storage, scheduler and entry points — as a whole word in
a string or a name (comments aside: prose may mention a protocol). Left out, each for a reason:
the demo cohorts and the generated cohorts of the demo's history and the benches (their data is
clinical on purpose), the 0.1 file-format reader (a record of an
old format's built-in names), and the storage migrations (frozen history: one carries a 0.1
column's values over).
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

from pathway.definition import load_definition, shipped_definition_files

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pathway", "storage", "scheduler", "carepath")
EXEMPT = (
    "carepath/demo.py",
    "carepath/demo_fls.py",
    "carepath/demo_history.py",
    "carepath/demo_history_fls.py",
    "carepath/replay/cohort.py",
    "pathway/legacy_format.py",
    "storage/migrations/versions/",
)
# Words so generic that they are the engine's own too: every pathway's close state and
# reasons, and FHIR's task status "completed".
GENERIC = {"closed", "declined", "deceased", "entered_in_error", "lost_to_follow_up", "completed"}


def protocol_names() -> set[str]:
    names: set[str] = set()
    for path in shipped_definition_files():
        d = load_definition(path)
        names |= set(d.vocabulary.facts) | set(d.requests) | set(d.derived)
        names |= set(d.close.reasons) | set(d.states)
    return names - GENERIC


def code_files() -> list[Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    return [p for p in files if not any(str(p.relative_to(ROOT)).startswith(e) for e in EXEMPT)]


def mentions(path: Path, names: set[str]) -> list[tuple[int, str]]:
    found = []
    words = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")\b")
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type in (tokenize.STRING, tokenize.NAME) or tok.type == getattr(
            tokenize, "FSTRING_MIDDLE", -1
        ):
            found += [(tok.start[0], m.group(1)) for m in words.finditer(tok.string)]
    return found


def test_the_shipped_definitions_name_what_the_scan_looks_for() -> None:
    names = protocol_names()
    assert {"pain_score", "care_day", "kyphoplasty", "fracture_date", "risk_category"} <= names


@pytest.mark.parametrize("path", code_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_names_a_fact_request_state_or_derived_value_of_a_shipped_pathway(
    path: Path,
) -> None:
    hits = mentions(path, protocol_names())
    assert not hits, f"{path.relative_to(ROOT)} names {hits}: that belongs in a definition file"
