"""Evaluating declared measures on one episode's history: pure, no clock, no database.

``History`` is what storage reads back from the audit log for one episode (its entries in seq
order, each with its clinical time, states, transitions, rules fired, refusals, timer and the
facts it recorded); ``evaluate`` turns it, a ``MeasureDef`` and the as-of time into a
``Verdict``: in the denominator or why not, in the numerator or why not, and the month it
counts in. Only entries whose clinical time is at or before as-of are seen.

Window rules (PROTOCOL.md and FLS.md, "Measures"): "by day N" of a day count closes at the end
of day N (day counts as the engine computes them: whole 24 h periods since a clock, or UTC dates
since a date fact); "within D days" closes exactly D × 24 h after the window opens, that instant
included. A window that has not closed at as-of, or (as the measure declares) that the episode
did not live to reach, leaves the episode out of the denominator unless the numerator was met
first; a close reason in ``exclude_closed`` (entered_in_error) leaves it out always.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from pathway.definition import Definition
from pathway.measures import Condition, MeasureDef, Window

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


@dataclass(slots=True)
class Entry:
    """One audit entry, as much of it as measures read."""

    seq: int
    kind: str
    at: datetime
    state_from: str | None
    state_to: str
    transitions: list[tuple[str, str, tuple[str, ...]]]
    rules: frozenset[str] = frozenset()  # of the rules measures name, those that fired
    refused: tuple[str, ...] = ()
    timer: str | None = None  # the timer's rule id on a timer entry
    facts: dict[str, Any] | None = None
    recorded_at: datetime | None = None  # when it was entered (observations: may be late)


@dataclass(slots=True)
class History:
    episode_id: str
    patient_ref: str | None
    closed_reason: str | None
    entries: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class Course:
    """A history read once for every measure: states entered, observations, clocks."""

    history: History
    opened_at: datetime
    entered: list[tuple[str, str, datetime]]  # (source, dest, at) of every transition
    transitions: list[tuple[str, str, tuple[str, ...], datetime]]
    observations: list[tuple[datetime, str, dict[str, Any]]]  # (at, state it was in, facts)
    first_entry: dict[str, datetime]
    care_start: datetime | None
    ended_at: datetime | None
    final_state: str
    last_facts: dict[str, Any]
    entries: list[Entry]
    as_of: datetime
    # computed once, keyed by id(window): a frozen dataclass's hash is recomputed per call
    windows: dict[int, tuple[Any, Any, bool]] = field(default_factory=dict)
    late: dict[datetime, float] = field(default_factory=dict)  # clinical time → days late
    months: dict[str, str | None] = field(default_factory=dict)  # month anchor → month


class Verdict(NamedTuple):
    """Immutable; a named tuple because one is made per measure per episode (a frozen
    dataclass's ``__init__`` costs several times as much)."""

    month: str | None
    counted: bool  # in the denominator
    met: bool  # in the numerator
    reason: str


def course_of(history: History, definition: Definition, as_of: datetime) -> Course | None:
    """The episode as it stood at ``as_of``; None if it had not opened by then."""
    entries = [e for e in history.entries if e.at <= as_of]
    if not entries:
        return None
    states = definition.states
    state = definition.initial_state
    first = entries[0]
    first_entry = {definition.initial_state: first.at}
    transitions: list[tuple[str, str, tuple[str, ...], datetime]] = []
    observations: list[tuple[datetime, str, dict[str, Any]]] = []
    care_start = ended_at = None
    last: dict[str, Any] = {}
    late: dict[datetime, float] = {}
    for e in entries:
        if e.facts is not None:
            observations.append((e.at, e.state_from or definition.initial_state, e.facts))
            last.update(e.facts)
            if e.recorded_at is not None and e.recorded_at - e.at > DAY:
                late[e.at] = (e.recorded_at - e.at) / DAY
        moves = e.transitions or ([(state, e.state_to, ())] if e.state_to != state else [])
        for src, dest, rules in moves:
            transitions.append((src, dest, rules, e.at))
            first_entry.setdefault(dest, e.at)
            if care_start is None and states[dest].starts_care:
                care_start = e.at
            if states[dest].terminal:
                ended_at = e.at
        state = e.state_to
    if care_start is None and states[definition.initial_state].starts_care:
        care_start = first.at
    course = Course(
        history, first.at, [(s, d, t) for s, d, _, t in transitions], transitions,
        observations, first_entry, care_start, ended_at, state, last, entries, as_of,
    )  # fmt: skip
    course.late = late
    return course


def month_of(course: Course, measure: MeasureDef) -> str | None:
    """The month the episode counts in for ``measure`` (its anchor's), "YYYY-MM"."""
    key = measure.month_clock or measure.month_fact or ""
    if key in course.months:
        return course.months[key]
    month = course.months[key] = _month(course, measure)
    return month


def _month(course: Course, measure: MeasureDef) -> str | None:
    if measure.month_clock == "opening":
        t = course.opened_at
        return f"{t.year:04d}-{t.month:02d}"
    value = course.last_facts.get(measure.month_fact or "")
    return str(value)[:7] if value else None


def held(c: Condition, course: Course, review: frozenset[str], lo: Any, hi: Any) -> Any:
    """The earliest clinical time in [lo, hi] (None: unbounded) at which ``c`` held, or None."""
    k = c.kind
    if k == "any":
        times = [t for p in c.parts if (t := held(p, course, review, lo, hi)) is not None]
        return min(times) if times else None
    if k == "recorded" or k == "review":
        fact, value, has_value, in_states = c.fact, c.value, c.has_value, c.in_states
        for at, state, facts in course.observations:
            if (lo is not None and at < lo) or (hi is not None and at > hi):
                continue
            if in_states and state not in in_states:
                continue
            if k == "review" and state in review:
                return at
            if k == "recorded" and fact in facts and (not has_value or facts[fact] == value):
                return at
        return None
    if k == "entered" or k == "left":
        for src, dest, at in course.entered:
            if (
                dest in c.states
                and (k == "entered" or src == c.state)
                and (lo is None or at >= lo)
                and (hi is None or at <= hi)
            ):
                return at
        return None
    for e in course.entries:
        at = e.at
        if (lo is not None and at < lo) or (hi is not None and at > hi):
            continue
        if k == "rule_fired":
            if c.rule in e.rules:
                return at
        elif e.timer == c.rule and (not c.in_states or e.state_from in c.in_states):
            return at
    return None


def window_bounds(w: Window, course: Course) -> tuple[datetime | None, datetime | None, bool]:
    """(opens, closes, known): closes is the last instant inside the window (computed once per
    episode: measures share their windows)."""
    bounds = course.windows.get(id(w))
    if bounds is None:
        bounds = course.windows[id(w)] = _bounds(w, course)
    return bounds


def _bounds(w: Window, course: Course) -> tuple[datetime | None, datetime | None, bool]:
    opens = None
    if w.opens is not None:
        if w.opens.state:
            opens = course.first_entry.get(w.opens.state)
        else:
            opens = next((e.at for e in course.entries if e.timer == w.opens.timer), None)
        if opens is None:
            return None, None, False
    if w.within_days is not None:
        assert opens is not None
        return opens, opens + w.within_days * DAY, True
    start = day_zero(w, course)
    if start is None:
        return opens, None, False
    return opens, start + (w.by_day or 0) * DAY + DAY - TICK, True


def day_zero(w: Window, course: Course) -> datetime | None:
    """The instant day 0 of the window's day count starts."""
    if w.date_fact:
        value = course.last_facts.get(w.date_fact)
        return datetime.combine(date.fromisoformat(value), time(), UTC) if value else None
    return course.opened_at if w.clock == "opening" else course.care_start


def review_states(definition: Definition) -> frozenset[str]:
    return frozenset(s.name for s in definition.states.values() if s.review)


def evaluate(
    measure: MeasureDef,
    course: Course,
    definition: Definition,
    review: frozenset[str] | None = None,
    reasons: bool = True,
) -> Verdict:
    """The episode's verdict on the measure; ``review`` (the review states) may be given once
    for many calls; without ``reasons`` the verdict's reason is left empty (counting only)."""
    if review is None:
        review = review_states(definition)
    month = month_of(course, measure)
    w = measure.window
    opens = closes = None
    known = True
    if w is not None:
        opens, closes, known = window_bounds(w, course)
    for c in measure.denominator:
        lo, hi = (opens, closes) if c.in_window else (None, None)
        if (c.in_window and not known) or held(c, course, review, lo, hi) is None:
            return Verdict(month, False, False, f"not in the denominator: not {c.label}")
    reason_closed = course.history.closed_reason
    if reason_closed in measure.exclude_closed:
        return Verdict(month, False, False, f"excluded: closed as {reason_closed}")
    times = [held(c, course, review, opens, closes) if known else None for c in measure.numerator]
    if all(t is not None for t in times):
        if not reasons:
            return Verdict(month, True, True, "")
        text = "; ".join(
            _said(c, t, w, opens, course, measure.late_after_days)
            for c, t in zip(measure.numerator, times, strict=True)
        )
        return Verdict(month, True, True, text)
    if w is not None and (not known or closes is None):
        return Verdict(month, False, False, "excluded: the window could not be placed")
    if w is not None and closes is not None and _left_out(measure, course, closes):
        return Verdict(month, False, False, _left_out(measure, course, closes))
    if not reasons:
        return Verdict(month, True, False, "")
    parts = []
    for c, t in zip(measure.numerator, times, strict=True):
        if t is None:
            later = held(c, course, review, opens, None)
            parts.append(
                _said(c, later, w, opens, course, measure.late_after_days)
                if later
                else _missing(c, w)
            )
    return Verdict(month, True, False, "; ".join(parts))


def _left_out(measure: MeasureDef, course: Course, closes: datetime) -> str:
    """Why an episode that missed the numerator is left out of this window: it has not
    closed at as-of, or the episode ended (as the measure declares) before it closed."""
    if closes > course.as_of:
        return "excluded: window not closed at as-of"
    ended, reason = course.ended_at, course.history.closed_reason
    if (
        ended is not None
        and ended < closes
        and (measure.ended_any or reason in measure.ended_closed)
    ):
        return f"excluded: ended ({course.final_state}) before the window closed"
    return ""


def _observed(c: Condition) -> bool:
    """Whether the condition is about what an observation recorded (the reasons say so)."""
    if c.kind == "any":
        return all(_observed(p) for p in c.parts)
    return c.kind in ("recorded", "review")


def _said(
    c: Condition, t: datetime, w: Window | None, opens: Any, course: Course, late_after: Any
) -> str:
    verb = " recorded" if _observed(c) else ""
    text = f"{c.label}{verb} {_when(t, w, opens, course)}"
    days = course.late.get(t) if _observed(c) and late_after is not None else None
    if days is not None and days > late_after:
        text += f" (entered {days:.0f} days after its clinical time)"
    return text


def _missing(c: Condition, w: Window | None) -> str:
    if w is None:
        by = ""
    elif w.within_days is not None:
        assert w.opens is not None
        by = f" within {w.within_days} days of {w.opens.label}"
    else:
        by = f" by {(w.of or '').replace('_', ' ')} {w.by_day}"
    if _observed(c):
        return f"no {c.label} recorded{by}"
    return f"not {c.label}{by}"


def _when(t: datetime, w: Window | None, opens: Any, course: Course) -> str:
    if w is None:
        return f"on {t.date().isoformat()}"
    if w.within_days is not None:
        assert w.opens is not None
        return f"{(t - opens) / DAY:.1f} days after {w.opens.label}"
    start = day_zero(w, course)
    assert start is not None
    n = (t.date() - start.date()).days if w.date_fact else int((t - start) // DAY)
    return f"on {(w.of or '').replace('_', ' ')} {n}"


def history_of(
    episode_id: str,
    patient_ref: str | None,
    closed_reason: str | None,
    bodies: list[dict[str, Any]],
    rules: tuple[str, ...],
) -> History:
    """A History from parsed audit payloads (``AuditRecord.body()``), for an in-memory store;
    storage builds the same from SQL without parsing whole payloads."""
    history = History(episode_id, patient_ref, closed_reason)
    for b in bodies:
        fired = {f["rule_id"] for f in b.get("rules", ())}
        timer = b.get("timer")
        history.entries.append(
            Entry(
                seq=b["seq"],
                kind=b["kind"],
                at=datetime.fromisoformat(b["at"]),
                state_from=b["state_from"],
                state_to=b["state_to"],
                transitions=[(t["source"], t["dest"], tuple(t["rules"])) for t in b["transitions"]],
                rules=frozenset(r for r in rules if r in fired),
                refused=tuple(r["firing"]["rule_id"] for r in b.get("refused", ())),
                timer=timer.split("@", 1)[0] if b["kind"] == "timer" and timer else None,
                facts=b.get("facts") if "facts" in b else None,
                recorded_at=datetime.fromisoformat(b["recorded_at"]),
            )
        )
    return history
