"""Scenario files (SCENARIOS.md): parsed and checked before anything runs.

A file that is not a scenario raises ``InvalidScenario`` with one line saying where and what was
expected; a well-formed event the engine refuses is not this module's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from pathway.errors import InvalidScenario

DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
EVENT_KINDS = ("observe", "request", "close", "advance")


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    day: int
    kind: str
    value: Any


@dataclass(frozen=True, slots=True)
class Expectation:
    step: int
    state: str | None
    rules: tuple[str, ...]
    refused: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    start: datetime
    patient: dict[str, Any]
    events: tuple[ScenarioEvent, ...]
    expect: tuple[Expectation, ...]
    source: str
    pathway: str | None = None  # the definition id; None: the default pathway


def load_scenario(path: str | Path) -> Scenario:
    source = str(path)  # no Path object: a replay of many files reads thousands of them
    try:
        with open(source, "rb", buffering=0) as f:  # read whole: no buffer object needed
            raw = f.readall()
    except OSError as exc:
        raise InvalidScenario(f"{source}: cannot read: {exc.strerror}") from None
    return parse_scenario(raw, source, yaml=source.lower().endswith((".yaml", ".yml")))


def parse_scenario(raw: bytes | str, source: str = "<scenario>", *, yaml: bool = False) -> Scenario:
    try:
        if yaml:
            import yaml as _yaml

            data = _yaml.safe_load(raw)
        else:
            data = orjson.loads(raw)
    except Exception as exc:  # a parse error of any kind: not a scenario
        kind = "YAML" if yaml else "JSON"
        raise InvalidScenario(f"{source}: not valid {kind}: {str(exc).splitlines()[0]}") from None
    return _Parser(source).scenario(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, got: Any, expected: str) -> InvalidScenario:
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return InvalidScenario(f"{self.source}: {where}: got {shown}, expected {expected}")

    def scenario(self, data: Any) -> Scenario:
        if not isinstance(data, dict):
            raise self.fail("top level", type(data).__name__, "an object with 'events'")
        keys = {"name", "pathway", "start", "patient", "events", "expect", "description"}
        unknown = set(data) - keys
        if unknown:
            raise self.fail(
                "top level",
                sorted(unknown)[0],
                "keys name, pathway, start, patient, events, expect",
            )
        pathway = data.get("pathway")
        if pathway is not None and (not isinstance(pathway, str) or not pathway):
            raise self.fail("pathway", pathway, "a pathway id")
        name = data["name"] if "name" in data else Path(self.source).stem  # no Path if named
        if not isinstance(name, str):
            raise self.fail("name", name, "a string")
        patient = data.get("patient", {})
        if not isinstance(patient, dict):
            raise self.fail("patient", patient, "an object of facts")
        events = data.get("events")
        if not isinstance(events, list):
            raise self.fail("events", events, "a list of events")
        event = self.event
        parsed = tuple([event(i, e) for i, e in enumerate(events)])
        for i in range(1, len(parsed)):
            if parsed[i].day < parsed[i - 1].day:
                raise self.fail(
                    f"events[{i}].day",
                    parsed[i].day,
                    f"a day ≥ {parsed[i - 1].day} (days never go backwards)",
                )
        expect = data.get("expect", [])
        if not isinstance(expect, list):
            raise self.fail("expect", expect, "a list of expectations")
        return Scenario(
            name=name,
            start=self.start(data.get("start")),
            patient=patient,
            events=parsed,
            expect=tuple([self.expectation(i, x, len(parsed)) for i, x in enumerate(expect)])
            if expect
            else (),
            source=self.source,
            pathway=pathway,
        )

    def start(self, value: Any) -> datetime:
        if value is None:
            return DEFAULT_START
        if isinstance(value, datetime):  # YAML parses timestamps itself
            moment = value
        else:
            try:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise self.fail(
                    "start", value, "an ISO 8601 time such as 2026-03-02T09:00:00Z"
                ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)

    def event(self, i: int, raw: Any) -> ScenarioEvent:
        # ``where`` is written only for an error: a cohort replay parses thousands of events
        if not isinstance(raw, dict):
            raise self.fail(
                f"events[{i}]", raw, "an object with 'day' and one of " + ", ".join(EVENT_KINDS)
            )
        day = raw.get("day")
        if type(day) is not int or day < 0:
            raise self.fail(f"events[{i}].day", day, "a whole number of days ≥ 0")
        kinds = [k for k in raw if k != "day"]
        if len(kinds) != 1 or kinds[0] not in EVENT_KINDS:
            raise self.fail(
                f"events[{i}]", kinds, "exactly one event kind of " + ", ".join(EVENT_KINDS)
            )
        kind = kinds[0]
        value = raw[kind]
        if kind == "observe":
            if not isinstance(value, dict):
                raise self.fail(f"events[{i}].observe", value, "an object of facts")
        elif kind == "advance":
            if value is not True:
                raise self.fail(f"events[{i}].advance", value, "true")
        elif not isinstance(value, str):  # request, close
            raise self.fail(f"events[{i}].{kind}", value, "a string")
        return ScenarioEvent(day, kind, value)

    def expectation(self, i: int, raw: Any, n_events: int) -> Expectation:
        where = f"expect[{i}]"
        if not isinstance(raw, dict):
            raise self.fail(where, raw, "an object with 'step'")
        step = raw.get("step")
        if type(step) is not int or not 0 <= step < n_events:
            raise self.fail(f"{where}.step", step, f"an event index from 0 to {n_events - 1}")
        state = raw.get("state")
        if state is not None and not isinstance(state, str):
            raise self.fail(f"{where}.state", state, "a state name")
        lists = {}
        for key in ("rules", "refused"):
            value = raw.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(f"{where}.{key}", value, "a list of rule ids")
            lists[key] = tuple(value)
        unknown = set(raw) - {"step", "state", "rules", "refused"}
        if unknown:
            raise self.fail(where, sorted(unknown)[0], "keys step, state, rules, refused")
        return Expectation(step, state, lists["rules"], lists["refused"])
