"""APScheduler wiring: the sweep as an interval job, plus the worker heartbeat.

APScheduler (3.x) only decides *when* to sweep. It holds no copy of any timer: its job store is
the default in-memory one, private to this process, and the timers live in the database, where
claims and row versions make firing exactly-once however many workers run. The sweep job runs
with ``max_instances=1`` and ``coalesce=True``: a slow sweep is never doubled up, and missed
runs collapse into one.

A third, optional job writes a signed audit checkpoint every ``checkpoint_every`` seconds: the
service is handed the writer (a callable taking ``now``) by its caller's composition root, so
this package knows nothing of keys or files. Checkpoints are idempotent files: several workers
writing one each per interval is harmless.

A fourth, optional job sends webhook messages from the outbox every ``deliver_every`` seconds
(``scheduler.deliveries``); like the sweep it never doubles up, and claims make it safe to run
in any number of workers.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Protocol

from scheduler.clock import ClockSkewed, report_refusal

log = logging.getLogger("carepath.scheduler")


class Worker(Protocol):
    """What the service drives: a sweep, a heartbeat, and a clean goodbye."""

    def sweep(self, now: datetime) -> int: ...

    def heartbeat(self, now: datetime) -> None: ...

    def stop(self) -> None:
        """Ask a running sweep to finish its current timer and return."""
        ...

    def close(self, now: datetime) -> None:
        """Release this worker's claims and mark it stopped."""
        ...


class Deliveries(Protocol):
    """What the service drives to send webhooks (``scheduler.deliveries.DeliveryWorker``)."""

    def deliver_due(self, now: datetime) -> int: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class SchedulerService:
    """A background APScheduler running one worker's sweep and heartbeat jobs."""

    def __init__(
        self,
        worker: Worker,
        *,
        interval: float = 5.0,
        heartbeat: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        checkpoint: Callable[[datetime], object] | None = None,
        checkpoint_every: float = 3600.0,
        deliveries: Deliveries | None = None,
        deliver_every: float = 1.0,
    ) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.worker = worker
        self.clock = clock
        self._on_stop: list[Callable[[], None]] = []
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._every(self._sweep, interval, "sweep")
        self._every(self._heartbeat, heartbeat, "heartbeat")
        self._checkpoint = checkpoint
        if checkpoint is not None and checkpoint_every > 0:
            self._every(self._write_checkpoint, checkpoint_every, "checkpoint", at_once=False)
        self.deliveries = deliveries
        if deliveries is not None:
            self._every(self._deliver, deliver_every, "deliveries")

    def _every(
        self, job: Callable[[], None], seconds: float, job_id: str, *, at_once: bool = True
    ) -> None:
        """Run ``job`` every ``seconds``: never two at once, missed runs coalesced into one
        however late (``at_once``: the first run now rather than after one interval)."""
        self._scheduler.add_job(
            job,
            "interval",
            seconds=seconds,
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **({"next_run_time": utcnow()} if at_once else {}),
        )

    def _deliver(self) -> None:
        try:
            sent = self.deliveries.deliver_due(self.clock())  # type: ignore[union-attr]
            if sent:
                log.info("delivered %d webhook message(s)", sent)
        except ClockSkewed:  # the sweep reports the refusal
            pass
        except Exception:  # a failed round is logged and retried at the next interval
            log.exception("webhook delivery failed")

    def _write_checkpoint(self) -> None:
        try:
            written = self._checkpoint(self.clock())  # type: ignore[misc]
            log.info("audit checkpoint written: %s", written)
        except Exception:  # a broken audit log or a full disk: logged, tried again next time
            log.exception("audit checkpoint failed")

    def _sweep(self) -> None:
        try:
            fired = self.worker.sweep(self.clock())
            if fired:
                log.info("fired %d timer(s)", fired)
        except ClockSkewed as exc:  # nothing fired; said at every sweep until the clock is fixed
            log.error("%s", exc)
            report_refusal(self.worker, exc)
        except Exception:  # a failed sweep is logged and retried at the next interval
            log.exception("sweep failed")

    def _heartbeat(self) -> None:
        try:
            self.worker.heartbeat(self.clock())
        except ClockSkewed:  # no heartbeat in a skewed time (it would look stale, or others)
            pass
        except Exception:
            log.exception("heartbeat failed")

    def start(self) -> None:
        self._scheduler.start()

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the scheduler stopped (to dispose of its connections)."""
        self._on_stop.append(callback)

    def stop(self) -> None:
        """Stop sweeping: finish the current timer, wait for the jobs, release claims."""
        self.worker.stop()
        if self.deliveries is not None:
            self.deliveries.stop()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        if self.deliveries is not None:
            self.deliveries.close()
        try:
            try:
                now = self.clock()
            except ClockSkewed as exc:  # still release the claims, at the database's time
                now = exc.reading.now
            self.worker.close(now)
        finally:
            for callback in self._on_stop:
                callback()

    def run_until_signalled(self) -> None:
        """Run in the foreground until SIGTERM or SIGINT, then stop cleanly."""
        done = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping after the current timer", signum)
            self.worker.stop()
            done.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            done.wait()
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
