"""The observation form, built from the definition's fact vocabulary, and what it submits.

Nothing here knows a clinical fact by name: the fields come from the definition (grouped by
their ``group``; booleans as yes/no/unknown, numbers with their range, enums and lists as
selects), and every value is checked by the engine's own ``FactSpec.validate``, so the page
can never accept what the pathway would refuse. Unlike the engine, which stops at the first bad
fact, the form checks every field, so the coordinator sees all problems at once, each next to
its field, with the input kept as typed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carepath import inputs
from pathway.errors import InvalidObservation
from pathway.model import Episode
from pathway.vocabulary import FactSpec, Vocabulary

GROUP_LABELS = {"follow_up": "Follow-up"}
FORM_ERROR = "_form"  # errors that belong to no single field
Raw = dict[str, str | list[str]]


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of the form, with the value in force on the episode (shown as a hint)."""

    spec: FactSpec
    current: Any
    current_at: datetime | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def step(self) -> str:
        return "1" if self.spec.kind == "integer" else "any"


@dataclass(frozen=True, slots=True)
class FormGroup:
    key: str
    label: str
    fields: tuple[FormField, ...]


@dataclass(slots=True)
class ObservationForm:
    """The form as rendered: its groups, what the user typed and the error of each field."""

    groups: tuple[FormGroup, ...]
    raw: Raw = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        value = self.raw.get(name, "")
        return value if isinstance(value, str) else ""

    def label(self, name: str) -> str:
        """The field's label, for the error summary's links."""
        for group in self.groups:
            for f in group.fields:
                if f.name == name:
                    return f.spec.label
        return "Observed at" if name == "at" else name

    def selected(self, name: str) -> list[str]:
        value = self.raw.get(name, [])
        return [value] if isinstance(value, str) else value


def build_form(vocabulary: Vocabulary, episode: Episode | None) -> ObservationForm:
    """Group the vocabulary's facts in definition order; hint each with the value in force."""
    groups: dict[str, list[FormField]] = {}
    for spec in vocabulary.facts.values():
        fv = episode.facts.get(spec.name) if episode else None
        groups.setdefault(spec.group or "other", []).append(
            FormField(spec, None if fv is None else fv.value, None if fv is None else fv.at)
        )
    return ObservationForm(
        tuple(
            FormGroup(key, GROUP_LABELS.get(key, key.replace("_", " ").capitalize()), tuple(fs))
            for key, fs in groups.items()
        )
    )


def read_form(
    vocabulary: Vocabulary, form: Mapping[str, Any], getlist: Any
) -> tuple[dict[str, Any], Raw, dict[str, str]]:
    """Facts from a submitted form, the raw input (to redisplay) and the error of each field."""
    facts: dict[str, Any] = {}
    raw: Raw = {}
    errors: dict[str, str] = {}
    for spec in vocabulary.facts.values():
        if spec.kind == "list":
            items = [str(i) for i in getlist(spec.name) if str(i)]
            if not items:
                continue
            raw[spec.name] = items
            text: Any = items
        else:
            text = str(form.get(spec.name, "")).strip()
            if not text:
                continue
            raw[spec.name] = text
        try:
            facts[spec.name] = spec.validate(_convert(spec, text))
        except InvalidObservation as exc:
            errors[spec.name] = f"got {_shown(exc.value)}, expected {exc.expected}"
    if not facts and not errors:
        errors[FORM_ERROR] = "Nothing to record: enter at least one finding."
    return facts, raw, errors


def read_clinical_time(text: str, now: datetime) -> datetime:
    """The 'observed at' field: a browser's datetime-local (read as UTC), or now when empty."""
    text = text.strip()
    if not text:
        return now
    return inputs.parse_time(text, "at")  # an InputError is a ValueError


def field_of(exc: InvalidObservation, errors: dict[str, str], vocabulary: Vocabulary) -> None:
    """Put an error the engine raised next to its field (or on the form when it names none)."""
    key = exc.fact if exc.fact in vocabulary else FORM_ERROR
    errors[key] = f"got {_shown(exc.value)}, expected {exc.expected}"


class _NotConvertible(InvalidObservation):
    pass


def _convert(spec: FactSpec, text: Any) -> Any:
    """Form text to the type the vocabulary expects; unconvertible text fails like bad input."""
    if spec.kind == "boolean":
        choice = {"yes": True, "no": False}.get(text)
        if choice is None:
            raise _NotConvertible(spec.name, text, "yes or no")
        return choice
    if spec.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise _NotConvertible(spec.name, text, spec.expected()) from None
    if spec.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise _NotConvertible(spec.name, text, spec.expected()) from None
        if not math.isfinite(number):
            raise _NotConvertible(spec.name, text, spec.expected())
        return int(number) if number.is_integer() else number
    return text


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "nothing"
    if value is True or value is False:
        return "yes" if value else "no"
    return repr(value) if isinstance(value, str) else str(value)
