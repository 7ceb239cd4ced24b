"""The scheduler's "now": the database server's clock on PostgreSQL, checked against the host's.

Workers on many hosts share one PostgreSQL; if each trusted its own clock, a host running three
days ahead would fire timers three days early and stamp what it writes in the future. So on
PostgreSQL a worker takes "now" — for due-ness, for the ``recorded_at`` of what it writes, for
its heartbeat — from the server (``statement_timestamp()``), and refuses to run at all while its
host's clock differs from the server's by more than a tolerance
(``CAREPATH_CLOCK_TOLERANCE_SECONDS``, default 30): a clock that far off means the host is
misconfigured, and a person should look. SQLite is one host: its clock is the host's.

``SchedulerClock()`` is the checked time (``ClockSkewed`` when off); ``reading()`` measures
without judging, for ``carepath scheduler status``; ``report_refusal`` records a refusal on the
worker's row (migration 0007), so that status on any host shows which worker refuses and why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.claims import ClaimStore
from storage.unit_of_work import SqlUnitOfWorkFactory

DEFAULT_TOLERANCE = timedelta(seconds=30)
log = logging.getLogger("carepath.scheduler")


def host_now() -> datetime:
    """This host's clock (the one place the scheduler reads it; tests replace it)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The host's and the database's clocks read together; ``database`` None on SQLite."""

    host: datetime
    database: datetime | None
    tolerance: timedelta

    @property
    def skew(self) -> timedelta | None:
        """How far the host runs ahead of the database (negative: behind)."""
        return None if self.database is None else self.host - self.database

    @property
    def refused(self) -> bool:
        return self.skew is not None and abs(self.skew) > self.tolerance

    @property
    def now(self) -> datetime:
        """The scheduler's time: the database's if there is one, else the host's."""
        return self.database if self.database is not None else self.host

    def explain(self, refusing: str = "workers on this host refuse to run") -> str:
        if self.skew is None:
            return "the host's clock (SQLite: one host, one clock)"
        seconds = self.skew.total_seconds()
        side = "ahead of" if seconds >= 0 else "behind"
        verdict = refusing if self.refused else "workers use the database's time"
        return (
            f"this host's clock is {abs(seconds):.3f} s {side} the database's "
            f"(host {self.host.isoformat()}, database {self.database.isoformat()}; "  # type: ignore[union-attr]
            f"tolerance {self.tolerance.total_seconds():g} s, "
            f"CAREPATH_CLOCK_TOLERANCE_SECONDS): {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host.isoformat(),
            "database": self.database.isoformat() if self.database else None,
            "skew_seconds": self.skew.total_seconds() if self.skew is not None else None,
            "tolerance_seconds": self.tolerance.total_seconds(),
            "refused": self.refused,
            "message": self.explain(),
        }


class ClockSkewed(Exception):
    """The host's clock is off the database's by more than the tolerance: do not run."""

    def __init__(self, reading: ClockReading) -> None:
        super().__init__(f"scheduler refuses to run: {reading.explain()}; fix the host's clock")
        self.reading = reading


class SchedulerClock:
    """The time a worker runs on (see the module docstring); call it for "now"."""

    def __init__(
        self,
        factory: SqlUnitOfWorkFactory,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        host: Callable[[], datetime] | None = None,
    ) -> None:
        self.claims = ClaimStore(factory)
        self.tolerance = tolerance
        self.host = host or (lambda: host_now())  # looked up at each call: tests patch it

    def reading(self) -> ClockReading:
        """Both clocks, the host's taken halfway through the database round trip."""
        before = self.host()
        database = self.claims.database_now()
        after = self.host()
        return ClockReading(before + (after - before) / 2, database, self.tolerance)

    def __call__(self) -> datetime:
        """The database's time (PostgreSQL) or the host's (SQLite); ``ClockSkewed`` if off."""
        reading = self.reading()
        if reading.refused:
            raise ClockSkewed(reading)
        return reading.now


class CommandClock:
    """The database's time without a round trip per call: it is read once per ``refresh`` and
    carried forward on this host's monotonic clock, while the host's wall clock is compared
    with that estimate at every call, so a host that jumps ahead is refused at once. (API
    requests read the clock several times each: authentication, the command, the page.)"""

    def __init__(self, clock: SchedulerClock, refresh: float = 60.0) -> None:
        self.clock, self.refresh = clock, refresh
        self._base: datetime | None = None  # the database's time at ``_read_at``
        self._read_at = float("-inf")

    def __call__(self) -> datetime:
        elapsed = time.monotonic() - self._read_at
        if self._base is None or elapsed > self.refresh:
            reading = self.clock.reading()
            self._base, self._read_at, elapsed = reading.now, time.monotonic(), 0.0
        reading = ClockReading(
            self.clock.host(), self._base + timedelta(seconds=elapsed), self.clock.tolerance
        )
        if reading.refused:
            raise ClockSkewed(reading)
        return reading.now


def command_clock(
    factory: SqlUnitOfWorkFactory, tolerance: timedelta = DEFAULT_TOLERANCE
) -> Callable[[], datetime]:
    """The "now" of interactive commands (API, pages, CLI), for the same reason as the workers':
    a command fires its episode's due timers first, so a host running ahead would fire them
    early. PostgreSQL: the checked database clock (``ClockSkewed`` when off), read once a
    minute (``CommandClock``); SQLite: the host's, with no round trip."""
    if ClaimStore(factory).dialect != "postgresql":
        return host_now
    return CommandClock(SchedulerClock(factory, tolerance))


def report_refusal(worker: object, refused: ClockSkewed) -> None:
    """Record the refusal on the worker's row (if it can: ``TimerWorker.refuse``), at the
    database's time, so that ``scheduler status`` on any host shows it; never raises."""
    refuse = getattr(worker, "refuse", None)
    reading = refused.reading
    if refuse is None or reading.skew is None:
        return
    try:
        refuse(reading.now, reading.skew.total_seconds(), str(refused))
    except Exception:  # the database is down too: the log line already said why
        log.exception("could not record the clock refusal")
