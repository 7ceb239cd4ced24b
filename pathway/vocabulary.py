"""The fact vocabulary: which facts exist, their types and ranges, and validation.

The vocabulary is data from the definition file; this module only knows the five kinds of
fact (integer, number, boolean, enum, list) and how to check a value against one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pathway.errors import InvalidDefinition, InvalidObservation

KINDS = ("integer", "number", "boolean", "enum", "list")


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
        if self.kind == "list":
            return f"a list of {self.min_items}–{self.max_items} distinct items from " + ", ".join(
                self.values
            )
        what = "a whole number" if self.kind == "integer" else "a number"
        return f"{what} from {_num(self.minimum)} to {_num(self.maximum)}"

    def validate(self, value: Any) -> Any:
        """Return the value if it fits this fact; raise InvalidObservation naming it if not."""
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


def _num(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """All facts of one definition, by name."""

    facts: Mapping[str, FactSpec]

    def __contains__(self, name: object) -> bool:
        return name in self.facts

    def validate(self, facts: Any) -> dict[str, Any]:
        """Validate a whole observation; the first bad fact raises and nothing is kept."""
        if not isinstance(facts, Mapping):
            raise InvalidObservation("facts", facts, "an object mapping fact names to values")
        if not facts:
            raise InvalidObservation("facts", dict(facts), "at least one fact")
        out: dict[str, Any] = {}
        for name, value in facts.items():
            spec = self.facts.get(name)
            if spec is None:
                raise InvalidObservation(
                    str(name), value, "a fact of the pathway vocabulary (unknown fact)"
                )
            out[name] = spec.validate(value)
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
