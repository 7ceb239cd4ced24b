"""Review windows: when a review may be booked, read from the definition and the episode's timers.

A definition's ``windows`` section names, for each timer that moves an episode into a review
state, the state-bound overdue timer of that state that closes the window:

    "windows": {"<opening timer rule>": {"label": "...", "closed_by": "<overdue timer rule>"}}

A window is *upcoming* while its opening timer is pending (it opens at the timer's due time and
closes the closing timer's delay later, the delay that timer gets when the state is entered),
and *open* while the episode is in the window's state having been moved there by that timer and
the closing timer is still pending (it closes at that timer's due time). Past its close it is
neither: the overdue escalation has taken over. Everything here is pure: ``now`` is an argument,
and nothing names a pathway's state or rule — the definition does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pathway.errors import InvalidDefinition
from pathway.model import FIRED, Episode

UPCOMING, OPEN = "upcoming", "open"


@dataclass(frozen=True, slots=True)
class WindowDef:
    """One window of a definition: opened by timer ``rule`` into review state ``state``, closed
    by the state-bound timer ``closed_by`` (``close_after`` after the state is entered)."""

    rule: str
    label: str
    state: str
    closed_by: str
    close_after: timedelta


@dataclass(frozen=True, slots=True)
class Window:
    """A window of one episode, upcoming or open, from ``opens_at`` to ``closes_at``."""

    rule: str
    label: str
    state: str
    status: str
    opens_at: datetime
    closes_at: datetime

    @property
    def first_day(self) -> date:
        return self.opens_at.astimezone(UTC).date()

    @property
    def last_day(self) -> date:
        return self.closes_at.astimezone(UTC).date()

    def contains(self, day: date) -> bool:
        """A booking is for a day: inside when the day overlaps the window (ends included)."""
        return self.first_day <= day <= self.last_day

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": self.rule,
            "label": self.label,
            "state": self.state,
            "status": self.status,
            "opens_at": self.opens_at.isoformat(),
            "closes_at": self.closes_at.isoformat(),
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
        }


def windows_section(
    doc: Mapping[str, Any], states: Mapping[str, Any], timers: Mapping[str, Any]
) -> dict[str, WindowDef]:
    """Parse and check the ``windows`` section: each key a timer that moves into a review state,
    each ``closed_by`` a state-bound timer of that state."""
    raw = doc.get("windows", {})
    if not isinstance(raw, dict):
        raise InvalidDefinition("windows: expected an object of timer rule → window")
    out: dict[str, WindowDef] = {}
    for rule, spec in raw.items():
        where = f"windows.{rule}"
        timer = timers.get(rule)
        if timer is None or timer.moves_to is None:
            raise InvalidDefinition(f"{where}: expected a timer that moves the episode")
        state = states.get(timer.moves_to)
        if state is None or not state.review:
            raise InvalidDefinition(f"{where}: {timer.moves_to!r} is not a review state")
        if not isinstance(spec, dict) or not isinstance(spec.get("label"), str):
            raise InvalidDefinition(f"{where}: expected {{'label': text, 'closed_by': timer}}")
        closer = timers.get(spec.get("closed_by"))
        if closer is None or not closer.state_bound or closer.id not in state.timers:
            raise InvalidDefinition(
                f"{where}.closed_by: got {spec.get('closed_by')!r}, expected a state-bound "
                f"timer of {timer.moves_to!r}"
            )
        out[rule] = WindowDef(rule, spec["label"], timer.moves_to, closer.id, closer.delay)
    return out


def open_window(definition: Any, episode: Episode, now: datetime) -> Window | None:
    """The window the episode is in now, if any: its state is a window's, entered by that
    window's timer, and the closing timer has not come due."""
    specs: Mapping[str, WindowDef] = definition.windows
    if definition.is_terminal(episode.state):
        return None
    fired = [
        t
        for t in episode.timers
        if t.status == FIRED
        and t.rule_id in specs
        and specs[t.rule_id].state == episode.state
        and t.due_at <= episode.state_entered_at
    ]
    if not fired:
        return None
    spec = specs[max(fired, key=lambda t: (t.due_at, t.order)).rule_id]
    closer = next(
        (
            t
            for t in episode.pending_timers()
            if t.rule_id == spec.closed_by and t.state == episode.state
        ),
        None,
    )
    if closer is None or now > closer.due_at:
        return None
    return Window(spec.rule, spec.label, spec.state, OPEN, episode.state_entered_at, closer.due_at)


def episode_windows(definition: Any, episode: Episode, now: datetime) -> list[Window]:
    """The episode's open window (if any) and its upcoming ones, soonest first, one per rule."""
    if definition.is_terminal(episode.state):
        return []
    found: dict[str, Window] = {}
    current = open_window(definition, episode, now)
    if current is not None:
        found[current.rule] = current
    for t in episode.pending_timers():
        spec = definition.windows.get(t.rule_id)
        if spec is None or spec.rule in found:
            continue
        closes = t.due_at + spec.close_after
        if now > closes:
            continue
        status = UPCOMING if now < t.due_at else OPEN
        found[spec.rule] = Window(spec.rule, spec.label, spec.state, status, t.due_at, closes)
    return sorted(found.values(), key=lambda w: (w.opens_at, w.rule))
