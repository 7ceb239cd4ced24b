"""Definition files written for carepath 0.1, whose engine had three derived values built in.

A stored definition version must compile as it was written (episodes stay pinned to it), so a
document whose ``derived`` is the 0.1 list of names is read with the meaning those names had
in that engine. This is the only place those names appear in Python, and it is a record of an
old file format, not knowledge of a pathway: new files declare what each derived value is.
"""

from __future__ import annotations

from typing import Any

_BUILT_IN_0_1: dict[str, dict[str, str]] = {
    "episode_day": {"days_since": "opening"},
    "care_day": {"days_since": "care_start"},
    "previous_review_pain": {"previous_review": "pain_score"},
}


def upgrade_derived(raw: Any) -> Any:
    """The ``derived`` section in today's form: a 0.1 list of built-in names is expanded."""
    if not isinstance(raw, list):
        return raw
    unknown = [n for n in raw if n not in _BUILT_IN_0_1]
    if unknown:
        return {n: None for n in raw}  # reported by the builder, naming the section
    return {name: _BUILT_IN_0_1[name] for name in raw}
