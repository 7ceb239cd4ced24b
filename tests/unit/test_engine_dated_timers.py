"""Timers anchored on date facts that one observation makes known are set in the order the
observation gives the facts: the same event gives the same decision in every process (the
order of a set of names would follow the process's string hashing)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from pathway.definition import SHIPPED_DEFINITIONS, Definition, compile_definition
from pathway.engine import decide, open_episode
from pathway.model import Observe, Open

FLS = SHIPPED_DEFINITIONS / "fracture_liaison.json"  # the installed package's
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def with_a_second_dated_timer() -> Definition:
    """The fracture liaison pathway plus a date fact with a timer set when it becomes known."""
    doc: dict[str, Any] = orjson.loads(FLS.read_bytes())
    doc["facts"]["scan_date"] = {"type": "date", "group": "fracture", "label": "Scan date"}
    doc["timers"]["SCAN-DUE"] = {
        "due": [{"days": 10, "after_date": "scan_date"}],
        "set_on_known": True,
    }
    doc["rules"]["SCAN-DUE"] = {"title": "Scan review due", "refs": ["K"]}
    return compile_definition(doc)


@pytest.mark.parametrize(
    "facts",
    [
        {"scan_date": "2026-02-20", "fracture_date": "2026-02-10"},
        {"fracture_date": "2026-02-10", "scan_date": "2026-02-20"},
    ],
)
def test_timers_of_newly_known_dates_are_set_in_the_observations_order(
    facts: dict[str, str],
) -> None:
    definition = with_a_second_dated_timer()
    opened = open_episode(definition, Open("ev-1", AT, "test"), "ep-1", AT)
    decision = decide(definition, opened.episode, Observe("ev-2", AT, "test", facts), AT)
    anchored = {"scan_date": ["SCAN-DUE"], "fracture_date": ["FLS-ASSESS-DUE", "FLS-DXA-DUE"]}
    expected = [tid for name in facts for tid in anchored[name]]
    dated = {tid for tids in anchored.values() for tid in tids}
    set_on_known = [t.rule_id for t in decision.timers_set if t.rule_id in dated]
    assert set_on_known == expected
    orders = [t.order for t in decision.timers_set]
    assert orders == sorted(orders)
