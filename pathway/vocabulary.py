"""The fact vocabulary: which facts exist, their types and ranges, and validation.

The vocabulary is data from the definition file; this module only knows the six kinds of
fact (integer, number, boolean, enum, list, date) and how to check a value against one. A date
is an ISO calendar date (``YYYY-MM-DD``, kept as that string) not after the clinical time of the
observation that records it: a fracture cannot be dated tomorrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pathway.errors import InvalidDefinition, InvalidObservation

KINDS = ("integer", "number", "boolean", "enum", "list", "date")


@dataclass(frozen=True, slots=True)
class FactSpec:
    """One fact: its kind, and the range or values it accepts."""

    name: str
    kind: str
    label: str = ""
    unit: str = ""
    group: str = ""
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()
    min_items: int | None = None
    max_items: int | None = None

    def expected(self) -> str:
        """Say in words what this fact accepts (used in every error message)."""
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "enum":
            return "one of " + ", ".join(self.values)
        if self.kind == "date":
            return "an ISO date (YYYY-MM-DD) not after the observation's clinical time"
        if self.kind == "list":
            return f"a list of {self.min_items}–{self.max_items} distinct items from " + ", ".join(
                self.values
            )
        what = "a whole number" if self.kind == "integer" else "a number"
        return f"{what} from {_num(self.minimum)} to {_num(self.maximum)}"

    def validate(self, value: Any, at: datetime | None = None) -> Any:
        """Return the value if it fits this fact; raise InvalidObservation naming it if not.

        ``at`` is the observation's clinical time: a date fact may not be after its UTC date."""
        kind = self.kind
        if kind == "boolean":
            if value is True or value is False:
                return value
        elif kind == "integer" or kind == "number":
            ok_type = type(value) is int or (kind == "number" and type(value) is float)
            if ok_type and value == value and self.minimum <= value <= self.maximum:  # type: ignore[operator]
                return value
        elif kind == "enum":
            if type(value) is str and value in self.values:
                return value
        elif kind == "list":
            return self._validate_list(value)
        elif kind == "date":
            return self._validate_date(value, at)
        raise InvalidObservation(self.name, value, self.expected())

    def _validate_list(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)):
            raise InvalidObservation(self.name, value, self.expected())
        for item in value:
            if type(item) is not str or item not in self.values:
                raise InvalidObservation(
                    self.name, value, f"{self.expected()} (item {item!r} is not one)"
                )
        if len(set(value)) != len(value):
            dup = next(item for item in value if value.count(item) > 1)
            raise InvalidObservation(
                self.name, value, f"{self.expected()} (item {dup!r} is duplicated)"
            )
        if not (self.min_items or 0) <= len(value) <= (self.max_items or len(value)):
            raise InvalidObservation(self.name, value, self.expected())
        return tuple(value)

    def _validate_date(self, value: Any, at: datetime | None) -> str:
        parsed = parse_date(value)
        if parsed is None:
            raise InvalidObservation(self.name, value, self.expected())
        if at is not None:
            day = at.astimezone(UTC).date() if at.tzinfo is not None else at.date()
            if parsed > day:  # UTC dates, as day counts and date anchors read them
                raise InvalidObservation(
                    self.name, value, f"a date not after the observation's UTC date ({day})"
                )
        return value


def parse_date(value: Any) -> date | None:
    """An ISO calendar date written exactly ``YYYY-MM-DD``, or None."""
    if type(value) is not str or len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None  # fromisoformat also reads week dates such as 2026-W01-1
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _num(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """All facts of one definition, by name."""

    facts: Mapping[str, FactSpec]

    def __contains__(self, name: object) -> bool:
        return name in self.facts

    def dates(self) -> frozenset[str]:
        """The date facts: the ones day counts and timers can be anchored on."""
        return frozenset(n for n, f in self.facts.items() if f.kind == "date")

    def validate(self, facts: Any, at: datetime | None = None) -> dict[str, Any]:
        """Validate a whole observation recorded at clinical time ``at``; the first bad fact
        raises and nothing is kept."""
        if type(facts) is not dict and not isinstance(facts, Mapping):  # a dict: no ABC check
            raise InvalidObservation("facts", facts, "an object mapping fact names to values")
        if not facts:
            raise InvalidObservation("facts", dict(facts), "at least one fact")
        out: dict[str, Any] = {}
        specs = self.facts
        for name, value in facts.items():
            spec = specs.get(name)
            if spec is None:
                raise InvalidObservation(
                    str(name), value, "a fact of the pathway vocabulary (unknown fact)"
                )
            kind = spec.kind  # the two commonest kinds accepted here, as FactSpec.validate does
            # (two branches: one `or` of both would type the value int, and mypyc store 1 for True)
            if kind == "boolean" and (value is True or value is False):  # noqa: SIM114
                out[name] = value
            elif kind == "integer" and type(value) is int and spec.minimum <= value <= spec.maximum:  # type: ignore[operator]
                out[name] = value
            else:
                out[name] = spec.validate(value, at)
        return out

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Vocabulary:
        """Build from the definition file's ``facts`` section, rejecting malformed specs."""
        facts: dict[str, FactSpec] = {}
        for name, raw in data.items():
            kind = raw.get("type")
            if kind not in KINDS:
                raise InvalidDefinition(
                    f"facts.{name}.type: got {kind!r}, expected one of {', '.join(KINDS)}"
                )
            if kind in ("integer", "number") and (raw.get("min") is None or raw.get("max") is None):
                raise InvalidDefinition(f"facts.{name}: a {kind} fact needs min and max")
            if kind in ("enum", "list") and not raw.get("values"):
                raise InvalidDefinition(f"facts.{name}: an {kind} fact needs values")
            facts[name] = FactSpec(
                name=name,
                kind=kind,
                label=raw.get("label", name),
                unit=raw.get("unit", ""),
                group=raw.get("group", ""),
                minimum=raw.get("min"),
                maximum=raw.get("max"),
                values=tuple(raw.get("values", ())),
                min_items=raw.get("min_items"),
                max_items=raw.get("max_items"),
            )
        return cls(facts)
