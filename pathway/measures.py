"""Quality measures as data: the ``measures`` section of a definition, parsed and checked.

A measure is a proportion of episodes: its denominator and numerator are lists of conditions
(all must hold) on an episode's history — a fact recorded (with a value, in a state), a review
recorded, a state entered or left, a rule fired, a timer fired — and the numerator's conditions
must hold inside the measure's window. A window opens at an anchor (a state's first entry, a
timer's firing, which is its due time) and closes either at the end of day N of a derived day
count ("by care day 42", "by fracture day 84") or exactly D × 24 h after it opened ("within 3
days"). ``measure_defaults`` holds what every measure of a pathway shares (the month anchor,
the exclusions, the bands); a measure may override any of it. Everything named is checked
against the definition when it loads: no measure has a line of its own in Python.
``pathway.measure_eval`` evaluates these declarations on one episode's history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

from pathway.errors import InvalidDefinition, PathwayError
from pathway.vocabulary import Vocabulary

CONDITION_KINDS = ("recorded", "review", "entered", "left", "rule_fired", "timer_fired", "any")
BANDS = ("red", "amber", "green")


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on an episode's history; ``kind`` is one of CONDITION_KINDS.

    recorded: an observation recording ``fact`` (equal to ``value`` when it is given);
    review: an observation recorded in a review state; both optionally only ``in_states``.
    entered: a transition into one of ``states``; left: out of ``state`` into one of ``states``.
    rule_fired: ``rule`` fired; timer_fired: timer ``rule`` fired, optionally ``in_states``.
    any: one of ``parts`` holds. ``in_window`` (denominator only): tested in the window.
    """

    kind: str
    label: str
    fact: str | None = None
    value: Any = None
    has_value: bool = False
    state: str | None = None
    states: frozenset[str] = frozenset()
    in_states: frozenset[str] = frozenset()
    rule: str | None = None
    parts: tuple[Condition, ...] = ()
    in_window: bool = False


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where a window opens: the first entry into ``state``, or timer ``timer``'s firing."""

    state: str | None = None
    timer: str | None = None

    @property
    def label(self) -> str:
        return f"entering {self.state}" if self.state else f"{self.timer}'s due time"


@dataclass(frozen=True, slots=True)
class Window:
    """``opens`` (None: any time before) to the end of day ``by_day`` of the derived day count
    ``of`` (a day-count clock or a date fact), or to ``within_days`` × 24 h after ``opens``."""

    opens: Anchor | None
    by_day: int | None = None
    of: str | None = None  # a derived name: days since a clock, or since a date fact
    clock: str | None = None  # the derived value's clock (opening, care_start) ...
    date_fact: str | None = None  # ... or its date fact
    within_days: int | None = None


@dataclass(frozen=True, slots=True)
class MeasureDef:
    """A declared measure. ``red_below`` and ``amber_up_to`` are the band thresholds (ratios
    0–1): red below ``red_below``, amber from it up to ``amber_up_to`` (both included), green
    above; with ``amber_up_to`` None there is no amber and green starts at ``red_below``."""

    id: str
    title: str
    numerator_text: str
    denominator_text: str
    refs: tuple[str, ...]
    numerator: tuple[Condition, ...]
    denominator: tuple[Condition, ...]
    window: Window | None
    month_clock: str | None  # "opening", or None when the month is a date fact's
    month_fact: str | None
    exclude_closed: frozenset[str]  # close reasons excluded from the denominator always
    ended_any: bool  # an episode that ended before the window closed is excluded ...
    ended_closed: frozenset[str]  # ... or only one closed with these reasons
    red_below: float
    amber_up_to: float | None
    late_after_days: int | None = None  # reasons mark observations entered later than this

    @property
    def description(self) -> str:
        """Numerator and denominator in words (pages and FHIR show it)."""
        return f"Numerator: {self.numerator_text}. Denominator: {self.denominator_text}."

    def band(self, numerator: int, denominator: int) -> str | None:
        """The band of numerator ÷ denominator, exact at the thresholds; None when empty."""
        if denominator == 0:
            return None
        ratio = Fraction(numerator, denominator)
        if ratio < Fraction(str(self.red_below)):
            return "red"
        if self.amber_up_to is not None and ratio <= Fraction(str(self.amber_up_to)):
            return "amber"
        return "green"


class _Names:
    """What a measure may name: the definition's facts, states, rules, timers, day counts."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        states: Mapping[str, Any],
        rules: Mapping[str, Any],
        timers: Mapping[str, Any],
        derived: Mapping[str, Any],
        references: Mapping[str, str],
    ) -> None:
        self.vocabulary, self.states, self.rules = vocabulary, states, rules
        self.timers, self.derived, self.references = timers, derived, references

    def state(self, name: Any, where: str) -> str:
        if name not in self.states:
            raise InvalidDefinition(f"{where}: unknown state {name!r}")
        return str(name)

    def fact(self, name: Any, where: str) -> str:
        if name not in self.vocabulary.facts:
            raise InvalidDefinition(f"{where}: unknown fact {name!r}")
        return str(name)

    def rule(self, name: Any, where: str) -> str:
        if name not in self.rules:
            raise InvalidDefinition(f"{where}: unknown rule {name!r}")
        return str(name)

    def timer(self, name: Any, where: str) -> str:
        if name not in self.timers:
            raise InvalidDefinition(f"{where}: unknown timer {name!r}")
        return str(name)


def measures_section(
    doc: Mapping[str, Any],
    vocabulary: Vocabulary,
    states: Mapping[str, Any],
    rules: Mapping[str, Any],
    timers: Mapping[str, Any],
    derived: Mapping[str, Any],
    references: Mapping[str, str],
) -> tuple[MeasureDef, ...]:
    """The ``measures`` section (id → measure) with ``measure_defaults``, checked."""
    raw = doc.get("measures", {})
    if not isinstance(raw, dict):
        raise InvalidDefinition("measures: expected an object of measure id → measure")
    defaults = doc.get("measure_defaults", {})
    if not isinstance(defaults, dict):
        raise InvalidDefinition("measure_defaults: expected an object")
    names = _Names(vocabulary, states, rules, timers, derived, references)
    measures = tuple(_measure(mid, {**defaults, **spec}, names) for mid, spec in raw.items())
    # equal windows made one object: evaluation caches each episode's bounds by identity
    shared: dict[Window, Window] = {}
    return tuple(
        replace(m, window=shared.setdefault(m.window, m.window)) if m.window else m
        for m in measures
    )


def _measure(mid: str, spec: Any, names: _Names) -> MeasureDef:
    where = f"measures.{mid}"
    if not isinstance(spec, dict):
        raise InvalidDefinition(f"{where}: expected an object")
    for key in ("title", "numerator", "denominator", "month", "bands", "refs"):
        if key not in spec:
            raise InvalidDefinition(f"{where}: missing {key!r}")
    refs = tuple(str(r) for r in spec["refs"])
    for ref in refs:
        if ref not in names.references:
            raise InvalidDefinition(f"{where}.refs: {ref!r} is not one of the references")
    text = spec.get("description", {})
    month = spec["month"]
    month_clock = month_fact = None
    if month == "opening":
        month_clock = "opening"
    elif isinstance(month, dict) and month.get("date_fact") in names.vocabulary.dates():
        month_fact = str(month["date_fact"])
    else:
        raise InvalidDefinition(
            f"{where}.month: got {month!r}, expected 'opening' or {{'date_fact': a date fact}}"
        )
    exclude = spec.get("exclude", {})
    ended = exclude.get("ended_before_window", "any")
    red_below, amber_up_to = _bands(spec["bands"], f"{where}.bands")
    return MeasureDef(
        id=mid,
        title=str(spec["title"]),
        numerator_text=str(text.get("numerator", "")),
        denominator_text=str(text.get("denominator", "")),
        refs=refs,
        numerator=_conditions(spec["numerator"], f"{where}.numerator", names),
        denominator=_conditions(spec["denominator"], f"{where}.denominator", names),
        window=_window(spec.get("window"), f"{where}.window", names),
        month_clock=month_clock,
        month_fact=month_fact,
        exclude_closed=frozenset(exclude.get("closed_as", ())),
        ended_any=ended == "any",
        ended_closed=frozenset(ended.get("closed_as", ()))
        if isinstance(ended, dict)
        else frozenset(),
        red_below=red_below,
        amber_up_to=amber_up_to,
        late_after_days=_late(spec.get("mark_late_after_days"), where),
    )


def _late(raw: Any, where: str) -> int | None:
    if raw is None:
        return None
    if type(raw) is not int or raw < 0:
        raise InvalidDefinition(f"{where}.mark_late_after_days: got {raw!r}, expected whole days")
    return raw


def _bands(raw: Any, where: str) -> tuple[float, float | None]:
    if not isinstance(raw, dict) or not isinstance(raw.get("red_below"), (int, float)):
        raise InvalidDefinition(f"{where}: expected red_below (0–1) and amber_up_to (or null)")
    red, amber = float(raw["red_below"]), raw.get("amber_up_to")
    if amber is not None and not (isinstance(amber, (int, float)) and red <= amber <= 1):
        raise InvalidDefinition(f"{where}.amber_up_to: got {amber!r}, expected red_below … 1")
    if not 0 <= red <= 1:
        raise InvalidDefinition(f"{where}.red_below: got {red!r}, expected 0 … 1")
    return red, None if amber is None else float(amber)


def _window(raw: Any, where: str, names: _Names) -> Window | None:
    if raw is None:
        return None
    opens = None
    if "opens" in raw:
        o = raw["opens"]
        if isinstance(o, dict) and "entered" in o:
            opens = Anchor(state=names.state(o["entered"], f"{where}.opens"))
        elif isinstance(o, dict) and "timer" in o:
            opens = Anchor(timer=names.timer(o["timer"], f"{where}.opens"))
        else:
            raise InvalidDefinition(f"{where}.opens: expected {{entered: state}} or {{timer: id}}")
    if "within_days" in raw:
        days = raw["within_days"]
        if opens is None or type(days) is not int or days < 0:
            raise InvalidDefinition(f"{where}.within_days: expected whole days after 'opens'")
        return Window(opens, within_days=days)
    day, of = raw.get("by_day"), raw.get("of")
    d = names.derived.get(of)
    if (
        type(day) is not int
        or d is None
        or not (d.date_fact or d.days_since in ("opening", "care_start"))
    ):
        raise InvalidDefinition(
            f"{where}: expected within_days, or by_day N of a derived day count since "
            f"opening, care_start or a date fact (got of={of!r})"
        )
    return Window(opens, by_day=day, of=str(of), clock=d.days_since, date_fact=d.date_fact)


def _conditions(raw: Any, where: str, names: _Names) -> tuple[Condition, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidDefinition(f"{where}: expected a non-empty list of conditions")
    return tuple(_condition(c, f"{where}[{i}]", names) for i, c in enumerate(raw))


def _condition(raw: Any, where: str, names: _Names) -> Condition:
    kinds = [k for k in CONDITION_KINDS if isinstance(raw, dict) and k in raw]
    if len(kinds) != 1:
        raise InvalidDefinition(f"{where}: expected exactly one of {list(CONDITION_KINDS)}")
    kind, arg = kinds[0], raw[kinds[0]]
    in_states = frozenset(names.state(s, f"{where}.in_states") for s in raw.get("in_states", ()))
    label = raw.get("label")
    common: dict[str, Any] = {"in_states": in_states, "in_window": bool(raw.get("in_window"))}
    if kind == "recorded":
        fact = names.fact(arg, f"{where}.recorded")
        has = "value" in raw
        if has:
            try:
                names.vocabulary.facts[fact].validate(raw["value"])
            except PathwayError as exc:
                raise InvalidDefinition(f"{where}.value: {exc}") from None
        text = label or (fact if not has else f"{fact} {raw['value']!r}".replace("True", "true"))
        return Condition(kind, text, fact=fact, value=raw.get("value"), has_value=has, **common)
    if kind == "review":
        return Condition(kind, label or "a review", **common)
    if kind in ("entered", "left"):
        to = raw.get("to", arg) if kind == "left" else arg
        states = frozenset(names.state(s, f"{where}.{kind}") for s in _list(to))
        state = names.state(arg, f"{where}.left") if kind == "left" else None
        text = label or (
            f"entered {'/'.join(sorted(states))}"
            if kind == "entered"
            else f"left {state} for {'/'.join(sorted(states))}"
        )
        return Condition(kind, text, state=state, states=states, **common)
    if kind == "rule_fired":
        return Condition(kind, label or f"{arg} fired", rule=names.rule(arg, where), **common)
    if kind == "timer_fired":
        rule = names.timer(arg, f"{where}.timer_fired")
        return Condition(kind, label or f"{rule} fired", rule=rule, **common)
    parts = _conditions(arg, f"{where}.any", names)
    return Condition(kind, label or " or ".join(p.label for p in parts), parts=parts, **common)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def rules_named(measures: tuple[MeasureDef, ...]) -> tuple[str, ...]:
    """Every rule a ``rule_fired`` condition names: storage reads whether each fired."""
    out: set[str] = set()

    def walk(c: Condition) -> None:
        if c.kind == "rule_fired" and c.rule:
            out.add(c.rule)
        for p in c.parts:
            walk(p)

    for m in measures:
        for c in (*m.numerator, *m.denominator):
            walk(c)
    return tuple(sorted(out))


def timers_named(measures: tuple[MeasureDef, ...]) -> frozenset[str]:
    """Every timer a measure reads (a ``timer_fired`` condition, a window opening at one): a
    timer entry that moved nothing and is none of these changes no verdict, so storage may
    leave it out of the history."""
    out: set[str] = set()

    def walk(c: Condition) -> None:
        if c.kind == "timer_fired" and c.rule:
            out.add(c.rule)
        for p in c.parts:
            walk(p)

    for m in measures:
        if m.window is not None and m.window.opens is not None and m.window.opens.timer:
            out.add(m.window.opens.timer)
        for c in (*m.numerator, *m.denominator):
            walk(c)
    return frozenset(out)
