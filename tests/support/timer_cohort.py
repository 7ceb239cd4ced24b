"""Episodes with many due timers, for scheduler tests: built through the real use cases.

``busy_definition()`` is the shipped pathway plus ten escalation timers on ``intake`` (days
1..10), so an episode opened a month ago and left in intake has eleven due timers, all of
which fire (each an escalation): a dense, known workload for exactly-once checks.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from pathway import usecases
from pathway.definition import DEFAULT_DEFINITION, Definition, compile_definition
from pathway.unit_of_work import UnitOfWork
from pathway.usecases import DefinitionRegistry

EXTRA = 10
OPENED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = OPENED + timedelta(days=30)


def busy_document() -> dict[str, Any]:
    doc = copy.deepcopy(orjson.loads(DEFAULT_DEFINITION.read_bytes()))
    for n in range(1, EXTRA + 1):
        rid = f"FU-TEST-{n:02d}"
        doc["rules"][rid] = {
            "title": f"test escalation {n}",
            "refs": ["Decision"],
            "action": {"kind": "escalation", "text": f"test escalation {n}"},
        }
        doc["timers"][rid] = {"days": n, "state_bound": True}
        doc["states"]["intake"]["timers"].append(rid)
    return doc


def busy_definition() -> Definition:
    return compile_definition(busy_document())


def write_busy_definition(path: Path) -> Path:
    path.write_bytes(orjson.dumps(busy_document()))
    return path


def open_idle_episodes(
    make_uow: Callable[[], UnitOfWork], definitions: DefinitionRegistry, count: int
) -> list[str]:
    """``count`` episodes opened at OPENED and left in intake: 1 + EXTRA timers due by NOW."""
    uow = make_uow()
    ids = []
    for i in range(count):
        at = OPENED + timedelta(seconds=i)
        applied = usecases.open_episode(uow, definitions, {"age": 70}, at=at, now=at, actor="t")
        ids.append(applied.outcome.episode_id)
    return ids


def timer_firings(
    make_uow: Callable[[], UnitOfWork], episode_ids: list[str]
) -> dict[str, list[dict]]:
    """Per episode, the audit bodies of its timer firings in audit order."""
    uow = make_uow()
    out: dict[str, list[dict]] = defaultdict(list)
    with uow:
        for eid in episode_ids:
            out[eid] = [r.body() for r in uow.audit_records(eid) if r.kind == "timer"]
    return out


def assert_each_timer_fired_once_in_order(firings: dict[str, list[dict]], per_episode: int) -> None:
    for eid, bodies in firings.items():
        keys = [b["timer"] for b in bodies]
        assert len(keys) == per_episode, (eid, keys)
        assert len(set(keys)) == len(keys), f"{eid}: a timer fired twice: {keys}"
        ats = [b["at"] for b in bodies]
        assert ats == sorted(ats), f"{eid}: fired out of due order: {ats}"
