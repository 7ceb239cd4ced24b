"""The sections of a definition that the engine's general features read: derived values, timer
anchors, enrolments into this pathway, safety properties. Each is parsed and checked here,
naming the first problem, for ``pathway.definition_builder``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pathway.criteria_compiler import Compiler
from pathway.definition import (
    CLOCKS,
    Derived,
    DuePart,
    EnrolmentDef,
    RequestDef,
    Rule,
    SafetyProperty,
)
from pathway.errors import InvalidDefinition
from pathway.vocabulary import Vocabulary

SAFETY_KINDS = (
    "observation_leads_to",
    "request_refused",
    "enters_only_when",
    "transition_keeps_task",
    "never_unseen",
)


def derived_section(raw: Any, vocabulary: Vocabulary) -> dict[str, Derived]:
    """The ``derived`` section: each name a day count or a fact at the previous review."""
    if not isinstance(raw, dict):
        raise InvalidDefinition("derived: expected an object of name → declaration")
    facts, dates = vocabulary.facts, vocabulary.dates()
    out: dict[str, Derived] = {}
    for name, spec in raw.items():
        where = f"derived.{name}"
        if name in facts:
            raise InvalidDefinition(f"{where}: a fact of the vocabulary has this name")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise InvalidDefinition(
                f"{where}: expected one of days_since, days_since_date, previous_review"
            )
        ((kind, value),) = spec.items()
        if kind == "days_since" and value in CLOCKS:
            out[name] = Derived(name, days_since=value)
        elif kind == "days_since_date" and value in dates:
            out[name] = Derived(name, date_fact=value)
        elif kind == "previous_review" and value in facts:
            out[name] = Derived(name, previous_review=value)
        else:
            raise InvalidDefinition(
                f"{where}.{kind}: got {value!r}, expected days_since one of {list(CLOCKS)}, "
                f"days_since_date a date fact {sorted(dates)}, or previous_review a fact"
            )
    return out


def due_parts(tid: str, raw: dict[str, Any], vocabulary: Vocabulary) -> tuple[DuePart, ...]:
    """``"days": N`` (after what sets it) or ``"due": [part, ...]`` (the later of them),
    each part ``{"days": N}`` or ``{"days": N, "after_date": FACT}``."""
    parts = raw.get("due", [{"days": raw.get("days")}])
    if not isinstance(parts, list) or not parts:
        raise InvalidDefinition(f"timers.{tid}.due: expected a non-empty list of parts")
    out: list[DuePart] = []
    for i, part in enumerate(parts):
        where = f"timers.{tid}" if "due" not in raw else f"timers.{tid}.due[{i}]"
        days = part.get("days") if isinstance(part, dict) else None
        if type(days) is not int or days < 0:
            raise InvalidDefinition(f"{where}.days: got {days!r}, expected a whole number ≥ 0")
        fact = part.get("after_date")
        if fact is not None and fact not in vocabulary.dates():
            raise InvalidDefinition(
                f"{where}.after_date: got {fact!r}, expected a date fact of the vocabulary"
            )
        out.append(DuePart(days, fact))
    return tuple(out)


def enrolments_section(
    doc: dict[str, Any], vocabulary: Vocabulary, use: Callable[[Any, str], Any]
) -> tuple[EnrolmentDef, ...]:
    """The ``enrolments`` section; ``use`` checks and marks each enrolment rule as used (the
    criteria read another pathway's vocabulary: ``pathway.registry`` compiles them)."""
    out: list[EnrolmentDef] = []
    for rid, raw in doc.get("enrolments", {}).items():
        where = f"enrolments.{rid}"
        use([rid], where)
        entering = raw.get("on_entering")
        if not raw.get("from") or not isinstance(entering, list) or not entering:
            raise InvalidDefinition(f"{where}: expected from (a pathway id) and on_entering")
        facts = raw.get("facts", {})
        for name, how in facts.items():
            if name not in vocabulary:
                raise InvalidDefinition(f"{where}.facts: {name!r} is not a fact of this pathway")
            if (
                not isinstance(how, dict)
                or len(how) != 1
                or next(iter(how)) not in ("copy", "value", "date_of")
            ):
                raise InvalidDefinition(
                    f"{where}.facts.{name}: expected one of copy, value, date_of"
                )
            if "value" in how:
                vocabulary.facts[name].validate(how["value"])
            if "date_of" in how and how["date_of"] not in CLOCKS:
                raise InvalidDefinition(
                    f"{where}.facts.{name}.date_of: expected one of {list(CLOCKS)}"
                )
        out.append(
            EnrolmentDef(
                rule=rid,
                source=str(raw["from"]),
                on_entering=tuple((e["state"], e.get("when", True)) for e in entering),
                facts=facts,
                link_live=bool(raw.get("link_live_episode", False)),
                close_with_source=tuple(raw.get("close_with_source", ())),
            )
        )
    return tuple(out)


def safety_section(
    doc: dict[str, Any],
    rules: Mapping[str, Rule],
    states: set[str],
    requests: Mapping[str, RequestDef],
    compiler: Compiler,
) -> tuple[SafetyProperty, ...]:
    """The ``safety`` section: properties of one of SAFETY_KINDS, checked against the rules,
    states and requests they name, their criteria compiled in this definition's vocabulary."""
    out: list[SafetyProperty] = []
    for i, raw in enumerate(doc.get("safety", ())):
        where = f"safety[{i}]"
        kinds = [k for k in SAFETY_KINDS if k in raw]
        if not raw.get("id") or len(kinds) != 1:
            raise InvalidDefinition(f"{where}: expected an id and one of {list(SAFETY_KINDS)}")
        kind, spec = kinds[0], raw[kinds[0]]
        prop = SafetyProperty(raw["id"], str(raw.get("text", "")), kind)
        if kind == "never_unseen":
            out.append(prop)
            continue
        state, when = spec.get("state"), spec.get("when")
        prop_rules = tuple(spec.get("rules", ()) or ([spec["rule"]] if "rule" in spec else []))
        for rid in prop_rules:
            if rid not in rules:
                raise InvalidDefinition(f"{where}: unknown rule {rid!r}")
        if state is not None and state not in states:
            raise InvalidDefinition(f"{where}.state: unknown state {state!r}")
        action = spec.get("action")
        if kind == "request_refused" and action not in requests:
            raise InvalidDefinition(f"{where}.action: {action!r} is not a request")
        out.append(
            SafetyProperty(
                prop.id,
                prop.text,
                kind,
                state,
                prop_rules,
                action,
                compiler.compile(when, f"{where}.when") if when is not None else None,
            )  # fmt: skip
        )
    return tuple(out)
