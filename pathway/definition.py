"""A pathway definition: the protocol as data, loaded, validated and versioned.

The file (``pathway/definitions/*.json``, or YAML of the same shape) holds the fact vocabulary,
the derived values (day counts, a fact's value at the previous review), states, routes, timers
and what they are anchored on, requests, close reasons, enrolments into this pathway from
another one, safety properties, quality measures, and every rule with its citation. Loading compiles criteria,
builds the state graph, checks the whole (unknown facts, unknown rules, unused rules, rules
without citation, unreachable and dead-end states, timers naming unknown rules) and names the
result ``<id>@<content hash>``: a changed file is a new version. The engine knows no name of
any pathway: everything it reads by name is declared here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from pathway.criteria import Node
from pathway.errors import InvalidDefinition
from pathway.graph import StateGraph
from pathway.measures import MeasureDef
from pathway.vocabulary import Vocabulary

SHIPPED_DEFINITIONS = Path(__file__).parent / "definitions"
# The pathway a command means when it names none (SCENARIOS.md: a file without "pathway").
DEFAULT_PATHWAY = "l1-l2-compression-fracture"
DEFAULT_DEFINITION = SHIPPED_DEFINITIONS / "l1_l2_compression_fracture.json"
ACTION_KINDS = ("order", "task", "escalation")
# What a day count counts from: the episode's opening, entry into its current state, the start
# of care (a state with ``starts_care``), or a date fact.
CLOCKS = ("opening", "state_entry", "care_start")


@dataclass(frozen=True, slots=True)
class Derived:
    """A value criteria read that no observation records: whole days since a clock or a date
    fact, or a fact's value in force at the episode's previous review."""

    name: str
    days_since: str | None = None  # one of CLOCKS, or None
    date_fact: str | None = None  # days since this date fact (UTC dates)
    previous_review: str | None = None  # this fact's value at the previous review


@dataclass(frozen=True, slots=True)
class DuePart:
    """One anchor of a timer: ``days`` after the event that set it, or after 00:00 UTC of a
    date fact."""

    days: int
    date_fact: str | None = None

    def due(self, set_at: datetime, facts: Mapping[str, Any]) -> datetime | None:
        if self.date_fact is None:
            return set_at + timedelta(days=self.days)
        fv = facts.get(self.date_fact)
        if fv is None:
            return None
        start = datetime.combine(date.fromisoformat(fv.value), time(), UTC)
        return start + timedelta(days=self.days)


@dataclass(frozen=True, slots=True)
class Action:
    """What a rule asks people to do when it fires: an order, a task or an escalation."""

    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    refs: tuple[str, ...]
    citations: tuple[str, ...]
    criterion: Node
    action: Action | None
    supersedes: tuple[str, ...]
    resolves_when_false: bool
    once: bool = False  # fires at most once per episode (its task, once opened, is never reopened)


@dataclass(frozen=True, slots=True)
class Route:
    """An ordered option of a state: applies when ``when`` holds and one of ``rules`` holds."""

    rules: tuple[str, ...]
    also: tuple[str, ...]
    when: Node | None
    to: str | None
    timers: tuple[str, ...]

    @property
    def trigger(self) -> str:
        return "|".join(self.rules)


@dataclass(frozen=True, slots=True)
class StateDef:
    name: str
    label: str
    terminal: bool
    routes: tuple[Route, ...]
    on_enter: tuple[str, ...]
    timers: tuple[str, ...]
    checks: tuple[str, ...]
    review: bool
    starts_care: bool
    tone: str = "other"  # how pages colour it: start, diagnostic, care, review, transfer, ...


@dataclass(frozen=True, slots=True)
class TimerDef:
    """When a timer is due (the later of its parts), what it is bound to and what it moves.

    A part anchored on a date fact that is unknown leaves the timer unset until the fact is
    known (``set_on_known`` timers are set then in any live state); a due time already past
    when the timer is set is the clinical time of the event that set it."""

    id: str
    due: tuple[DuePart, ...]
    state_bound: bool
    moves_from: frozenset[str]
    moves_to: str | None
    order: int
    once: bool = False  # set at most once per episode (e.g. on the first entry into a state)
    set_on_known: bool = False  # set when its anchor date fact becomes known

    @property
    def days(self) -> int:
        """Days after what sets it (or after its first anchor): how diagrams and exports say it."""
        relative = [p.days for p in self.due if p.date_fact is None]
        return relative[0] if relative else self.due[0].days

    @property
    def delay(self) -> timedelta:
        return timedelta(days=self.days)

    @property
    def anchor_facts(self) -> frozenset[str]:
        return frozenset(p.date_fact for p in self.due if p.date_fact is not None)

    def nominal_due(self, set_at: datetime, facts: Mapping[str, Any]) -> datetime | None:
        """The later of its parts, before any clamping; None while an anchor fact is unknown."""
        best: datetime | None = None
        for part in self.due:
            when = part.due(set_at, facts)
            if when is None:
                return None
            if best is None or when > best:
                best = when
        return best


@dataclass(frozen=True, slots=True)
class RequestDef:
    action: str
    rule: str
    refused_always: bool
    allowed_from: frozenset[str]
    to: str | None


@dataclass(frozen=True, slots=True)
class CloseDef:
    rule: str
    to: str
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EnrolmentDef:
    """An enrolment into this pathway, declared by it on another pathway's transitions.

    When an episode of ``source`` enters one of ``on_entering``'s states and that entry's
    criterion (in the source's vocabulary, compiled when both definitions are loaded) holds, an
    episode of this pathway is opened with ``facts`` copied or set, in the same transaction; or,
    with ``link_live``, a live episode of this pathway for the same patient is linked instead.
    ``close_with_source`` lists the source's close reasons that close the enrolled episode too.
    """

    rule: str
    source: str
    on_entering: tuple[tuple[str, Any], ...]  # (state, raw criterion in the source vocabulary)
    facts: Mapping[
        str, Mapping[str, Any]
    ]  # target fact → {"copy": f} | {"value": v} | {"date_of": clock}
    link_live: bool
    close_with_source: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SafetyProperty:
    """A property ``definition check`` proves over every reachable case (one of four kinds:
    rules that must take an observation to a state, a request always refused, a state entered
    only when a criterion holds, a rule whose transition leaves its task open) or the general
    one that no live episode sits unseen."""

    id: str
    text: str
    kind: str
    state: str | None = None
    rules: tuple[str, ...] = ()
    action: str | None = None
    when: Node | None = None


@dataclass(frozen=True)
class Definition:
    """A compiled, validated definition. Shared and immutable: one per version."""

    id: str
    title: str
    version: str
    content_hash: str
    references: Mapping[str, str]
    vocabulary: Vocabulary
    initial_state: str
    states: Mapping[str, StateDef]
    rules: Mapping[str, Rule]
    timers: Mapping[str, TimerDef]
    requests: Mapping[str, RequestDef]
    close: CloseDef
    global_routes: tuple[Route, ...]
    graph: StateGraph
    document: Mapping[str, Any]
    superseded_by: Mapping[str, frozenset[str]]  # rule → the rules whose action replaces its own
    derived: Mapping[str, Derived] = field(default_factory=dict)
    enrolments: tuple[EnrolmentDef, ...] = ()
    safety: tuple[SafetyProperty, ...] = ()
    remembered: frozenset[str] = frozenset()  # facts whose value at the last review is kept
    dated_timers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # fact → timers
    # (name, what it counts from or reads): the derived values in the order the engine
    # computes them on every evaluation, kept flat because that is the hot path
    derived_plan: tuple[tuple[str, str, str | None], ...] = ()
    measures: tuple[MeasureDef, ...] = ()  # quality measures (pathway.measures)
    windows: Mapping[str, Any] = field(default_factory=dict)  # review windows (pathway.windows)

    def is_terminal(self, state: str) -> bool:
        return self.states[state].terminal

    @property
    def names(self) -> frozenset[str]:
        """Every name a criterion may read: the facts and the derived values."""
        return frozenset(self.vocabulary.facts) | frozenset(self.derived)


def content_hash(document: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of the document: key order and spacing do not count."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def shipped_definition_files() -> list[Path]:
    """The definition files carepath ships, in name order."""
    return sorted(SHIPPED_DEFINITIONS.glob("*.json"))


def load_definition(path: str | Path | None = None) -> Definition:
    """Load, validate and compile one definition file (JSON, or YAML by its suffix); without a
    path, the shipped definition of the default pathway."""
    path = Path(path) if path else DEFAULT_DEFINITION
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidDefinition(f"definition file {str(path)!r}: {exc.strerror}") from None
    return _compile_text(text, path.suffix.lower() in (".yaml", ".yml"))


@lru_cache(maxsize=16)
def _compile_text(text: str, yaml: bool) -> Definition:
    try:
        if yaml:
            import yaml as _yaml

            document = _yaml.safe_load(text)
        else:
            document = orjson.loads(text)
    except Exception as exc:  # any parse error is a bad definition, said in one line
        raise InvalidDefinition(
            f"definition is not valid {'YAML' if yaml else 'JSON'}: {exc}"
        ) from None
    return compile_definition(document)


def compile_definition(document: Any) -> Definition:
    """Compile a parsed definition document; raise InvalidDefinition naming the first problem."""
    if not isinstance(document, dict):
        raise InvalidDefinition("definition: expected a JSON object at the top level")
    for key in ("id", "initial_state", "facts", "states", "rules", "references"):
        if key not in document:
            raise InvalidDefinition(f"definition: missing required section {key!r}")
    from pathway.definition_builder import DefinitionBuilder  # it imports this module's types

    return DefinitionBuilder(document).build()
