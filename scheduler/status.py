"""What ``carepath scheduler status`` reports: workers, due and overdue timers, parked ones."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from storage.claims import ClaimStore
from storage.columns import read_time
from storage.unit_of_work import SqlUnitOfWorkFactory


def scheduler_status(
    factory: SqlUnitOfWorkFactory, now: datetime, stale_after: timedelta = timedelta(seconds=60)
) -> dict[str, Any]:
    """A consistent picture (one read transaction) of the scheduler's side of the database."""
    rows = ClaimStore(factory).status(now)
    workers, parked = rows.workers, rows.parked
    due, oldest, parked_count, escalations = (
        rows.due,
        rows.oldest_due,
        rows.parked_count,
        rows.open_escalations,
    )
    return {
        "now": now.isoformat(),
        "workers": [_worker(row, now, stale_after) for row in workers],
        "due": int(due),
        "oldest_due": read_time(oldest).isoformat() if oldest else None,
        "overdue_escalations": int(escalations),
        "parked": int(parked_count),
        "parked_timers": [
            {
                "episode_id": e,
                "timer": k,
                "due_at": read_time(d).isoformat(),
                "attempts": a,
                "last_error": err,
            }
            for e, k, d, a, err in parked
        ],
        "webhooks": webhook_status(factory),
    }


def webhook_status(factory: SqlUnitOfWorkFactory) -> dict[str, Any]:
    """Outbox counts (pending, delivered, failed) and the latest failed messages."""
    from storage.webhooks import WebhookStore

    store = WebhookStore(factory)
    return {**store.counts(), "failed_messages": store.failed_messages()}


def _worker(row: Any, now: datetime, stale_after: timedelta) -> dict[str, Any]:
    wid, host, pid, started, last_seen, stopped, fired, skew, refusal = row
    last = read_time(last_seen)
    if stopped is not None:
        status = "stopped"
    elif now - last > stale_after:
        status = "stale"
    elif refusal is not None:
        status = "refused"
    else:
        status = "running"
    return {
        "id": wid,
        "host": host,
        "pid": pid,
        "status": status,
        "fired": fired,
        "started_at": read_time(started).isoformat(),
        "last_seen": last.isoformat(),
        "clock_skew_seconds": skew,
        "clock_refusal": refusal,
    }
