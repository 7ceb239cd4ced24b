"""The timer a worker fires next on an episode: the first pending one due, in firing order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from pathway.model import CANCELLED, FIRED, Timer
from scheduler.worker import next_due

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _episode(*timers: Timer) -> SimpleNamespace:
    return SimpleNamespace(timers=timers)


def test_the_earliest_due_fires_first_and_ties_go_in_the_order_they_were_set() -> None:
    early = NOW - timedelta(days=2)
    timers = (
        Timer("b", "R", early, order=2),
        Timer("late", "R", NOW - timedelta(days=1)),
        Timer("a", "R", early, order=1),
    )
    assert next_due(_episode(*timers), NOW).key == "a"  # type: ignore[arg-type, union-attr]


def test_timers_not_yet_due_fired_or_cancelled_are_not_fired() -> None:
    timers = (
        Timer("future", "R", NOW + timedelta(seconds=1)),
        Timer("fired", "R", NOW - timedelta(days=1), status=FIRED),
        Timer("cancelled", "R", NOW - timedelta(days=1), status=CANCELLED),
    )
    assert next_due(_episode(*timers), NOW) is None  # type: ignore[arg-type]
    assert next_due(_episode(*timers, Timer("now", "R", NOW)), NOW).key == "now"  # type: ignore[arg-type, union-attr]
