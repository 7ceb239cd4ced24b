"""The sweep for missed appointments: each appointment whose day has passed (on the database's
clock, ``scheduler.clock``) with no review recorded gets one ``booking`` event, action missed.

The event id is derived from the appointment (``pathway.appointments.missed_event_id``), so
any number of workers sweeping at once record it once: the second finds the first's outcome,
or loses the version race and skips. Nothing here is clinical: the engine decides.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from pathway.booking import record_missed
from pathway.errors import ConcurrencyConflict, PathwayError
from pathway.registry import DefinitionRegistry
from storage.appointments import booked_before
from storage.unit_of_work import SqlUnitOfWorkFactory

log = logging.getLogger("carepath.scheduler")


def sweep_missed(
    factory: SqlUnitOfWorkFactory,
    definitions: DefinitionRegistry,
    now: datetime,
    *,
    actor: str = "scheduler",
    limit: int = 100,
) -> int:
    """Record every appointment missed by ``now``; return how many were recorded."""
    recorded = 0
    for episode_id in booked_before(factory.connections, now.astimezone(UTC).date(), limit):
        try:
            applied = record_missed(factory(), definitions, episode_id, now=now, actor=actor)
        except ConcurrencyConflict:  # another worker or a coordinator wrote it first
            continue
        except PathwayError as exc:  # bad data: said, and looked at again next sweep
            log.warning("missed appointment of episode %s not recorded: %s", episode_id, exc)
            continue
        if applied is not None and applied.decision is not None:
            recorded += 1
    return recorded
