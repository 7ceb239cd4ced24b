"""The definitions a process knows: every pathway by id, each with its current and stored versions.

New episodes of a pathway get its *current* version; an episode keeps the version it was opened
under (``<id>@<hash>``) until a migration moves it. The registry also answers which enrolments
other definitions declare on a pathway's transitions, each enrolment's criteria compiled once
per source version in the source's vocabulary (the enrolling definition cannot see it alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pathway.criteria import Node
from pathway.criteria_compiler import Compiler, resolve_rule_refs
from pathway.definition import DEFAULT_PATHWAY, Definition, EnrolmentDef
from pathway.errors import InvalidDefinition, InvalidRequest

Trigger = tuple[str, Node]  # (state entered, criterion on the source episode)


class DefinitionRegistry:
    """Definition versions by version string, and the current one of each pathway."""

    def __init__(
        self,
        current: Definition | Iterable[Definition],
        others: Iterable[Definition] = (),
        default: str = DEFAULT_PATHWAY,
    ) -> None:
        currents = [current] if isinstance(current, Definition) else list(current)
        if not currents:
            raise InvalidDefinition("no pathway definition loaded")
        self._current: dict[str, Definition] = {}
        for d in currents:
            self._current[d.id] = d
        self.default = default if default in self._current else currents[0].id
        self._by_version = {d.version: d for d in (*currents, *others)}
        self._triggers: dict[tuple[str, str, str], tuple[Trigger, ...]] = {}
        self._into: dict[str, list[tuple[Definition, EnrolmentDef]]] = {}
        self._watched: dict[str, frozenset[str]] = {}

    @property
    def current(self) -> Definition:
        """The current version of the default pathway."""
        return self._current[self.default]

    def current_for(self, pathway: str | None) -> Definition:
        """The current version of a pathway (the default one for None)."""
        if pathway is None:
            return self.current
        try:
            return self._current[pathway]
        except KeyError:
            raise InvalidRequest(
                "pathway", pathway, "one of " + ", ".join(self.pathways())
            ) from None

    def pathways(self) -> list[str]:
        return list(self._current)

    def currents(self) -> list[Definition]:
        return list(self._current.values())

    def add(self, definition: Definition) -> None:
        self._by_version[definition.version] = definition

    def get(self, version: str) -> Definition:
        try:
            return self._by_version[version]
        except KeyError:
            raise InvalidDefinition(
                f"definition version {version!r} is not loaded; loaded: {sorted(self._by_version)}"
            ) from None

    def versions(self) -> list[str]:
        return list(self._by_version)

    # -- enrolments ------------------------------------------------------------------------

    def enrolments_into(self, source: Definition) -> list[tuple[Definition, EnrolmentDef]]:
        """The enrolments the current definitions declare on ``source``'s pathway (asked on
        every decision saved: computed once per pathway)."""
        found = self._into.get(source.id)
        if found is None:
            found = self._into[source.id] = [
                (target, e)
                for target in self._current.values()
                for e in target.enrolments
                if e.source == source.id and target.id != source.id
            ]
        return found

    def trigger_states(self, source: Definition) -> frozenset[str]:
        """The states of ``source``'s pathway whose entry some enrolment watches."""
        found = self._watched.get(source.id)
        if found is None:
            found = self._watched[source.id] = frozenset(
                state for _, e in self.enrolments_into(source) for state, _ in e.on_entering
            )
        return found

    def triggers(
        self, source: Definition, target: Definition, e: EnrolmentDef
    ) -> tuple[Trigger, ...]:
        """The enrolment's (state, criterion) pairs compiled against this source version."""
        key = (source.version, target.version, e.rule)
        found = self._triggers.get(key)
        if found is None:
            found = self._triggers[key] = compile_triggers(source, e)
        return found


def compile_triggers(source: Definition, e: EnrolmentDef) -> tuple[Trigger, ...]:
    """Check an enrolment against the definition it watches and compile its criteria there."""
    compiler = Compiler(source.names, [], frozenset(source.states))
    out: list[Trigger] = []
    for i, (state, raw) in enumerate(e.on_entering):
        where = f"enrolments.{e.rule}.on_entering[{i}]"
        if state not in source.states:
            raise InvalidDefinition(f"{where}.state: {state!r} is not a state of {source.version}")
        out.append((state, compiler.compile(raw, f"{where}.when")))
    criteria: dict[str, Node] = {rid: r.criterion for rid, r in source.rules.items()}
    resolve_rule_refs(compiler.rule_refs, criteria)
    for name, how in e.facts.items():
        copied: Any = how.get("copy")
        if copied is not None and copied not in source.vocabulary:
            raise InvalidDefinition(
                f"enrolments.{e.rule}.facts.{name}: {copied!r} is not a fact of {source.version}"
            )
    for reason in e.close_with_source:
        if reason not in source.close.reasons:
            raise InvalidDefinition(
                f"enrolments.{e.rule}.close_with_source: {reason!r} is not a close reason of "
                f"{source.version}"
            )
    return tuple(out)
