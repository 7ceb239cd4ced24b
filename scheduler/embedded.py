"""The scheduler inside another process (``carepath serve``): start it, stop it.

Several web workers may each embed one: firing stays exactly-once because claims and row
versions live in the database, not in APScheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pathway.usecases import DefinitionRegistry
from scheduler.clock import DEFAULT_TOLERANCE, SchedulerClock
from scheduler.service import Deliveries, SchedulerService
from scheduler.worker import TimerWorker
from storage.unit_of_work import SqlUnitOfWorkFactory


def start_embedded_scheduler(
    factory: SqlUnitOfWorkFactory,
    definitions: DefinitionRegistry,
    *,
    interval: float = 5.0,
    batch: int = 100,
    clock_tolerance: timedelta = DEFAULT_TOLERANCE,
    checkpoint: Callable[[datetime], object] | None = None,
    checkpoint_every: float = 3600.0,
    deliveries: Deliveries | None = None,
    deliver_every: float = 1.0,
) -> SchedulerService:
    """Start sweeping ``factory``'s database in background threads; call ``.stop()`` to end.

    The caller's wiring (``carepath.bootstrap``): the factory, which the scheduler now owns and
    disposes of when it stops, and a registry holding every stored definition version;
    ``checkpoint`` writes a signed audit checkpoint every ``checkpoint_every`` seconds;
    ``deliveries`` sends webhook messages every ``deliver_every`` seconds.
    """
    worker = TimerWorker(
        factory, definitions, batch=batch, lease=timedelta(seconds=max(30, 6 * interval))
    )
    clock = SchedulerClock(factory, clock_tolerance)  # the database's time (PostgreSQL)
    service = SchedulerService(
        worker,
        interval=interval,
        heartbeat=max(interval, 5.0),
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        clock=clock,
        deliveries=deliveries,
        deliver_every=deliver_every,
    )
    service.on_stop(factory.dispose)
    service.start()
    return service
