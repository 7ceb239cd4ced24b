"""A pathway definition: the protocol as data, loaded, validated and versioned.

The file (``pathway/definitions/*.json``, or YAML of the same shape) holds the fact vocabulary,
states, routes, timers, requests and every rule with its citation. Loading compiles criteria,
builds the state graph, checks the whole (unknown facts, unknown rules, unused rules, rules
without citation, unreachable and dead-end states, timers naming unknown rules) and names the
result ``<id>@<content hash>``: a changed file is a new version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from pathway.criteria import Node
from pathway.errors import InvalidDefinition
from pathway.graph import StateGraph
from pathway.vocabulary import Vocabulary

DEFAULT_DEFINITION = Path(__file__).parent / "definitions" / "l1_l2_compression_fracture.json"
DERIVED = frozenset({"episode_day", "care_day", "previous_review_pain"})
ACTION_KINDS = ("order", "task", "escalation")


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


@dataclass(frozen=True, slots=True)
class TimerDef:
    id: str
    days: int
    state_bound: bool
    moves_from: frozenset[str]
    moves_to: str | None
    order: int

    @property
    def delay(self) -> timedelta:
        return timedelta(days=self.days)


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

    def is_terminal(self, state: str) -> bool:
        return self.states[state].terminal


def content_hash(document: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of the document: key order and spacing do not count."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_definition(path: str | Path | None = None) -> Definition:
    """Load, validate and compile a definition file (the shipped one by default)."""
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
