"""Ids that sort by the time they were made: new rows append to an index instead of scattering.

A random id (uuid4) lands anywhere in every B-tree keyed by it, so each new episode dirties a
page of its own in the episodes key and in the (episode_id, seq) keys of its observations and
audit entries. An id that starts with the time of the decision that made it lands at the end,
where the previous new rows' pages already are.

``time_ordered_id(now)`` is 32 lower-case hex digits, like ``uuid4().hex``: 12 of milliseconds
since the epoch at ``now`` (the decision's time: pathway/ reads no clock), then 20 random
(80 bits, so ids made in the same millisecond still differ and are not guessable).
"""

from __future__ import annotations

import os
from datetime import datetime

RANDOM_BYTES = 10


def time_ordered_id(now: datetime) -> str:
    """A new id for a row made at ``now`` (timezone-aware): time order first, then random."""
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now!r}: expected a timezone-aware UTC time")
    millis = max(0, int(now.timestamp() * 1000))
    return f"{millis:012x}{os.urandom(RANDOM_BYTES).hex()}"


def new_event_id(now: datetime | None = None) -> str:
    """An event id for an event its caller gave none: time-ordered at ``now`` (the unique index
    on the audit log's event ids then appends, as episode ids do: ~41 of ~206 WAL frames of a
    group commit of 100 decisions went to scattering it), random without one."""
    return time_ordered_id(now) if now is not None else os.urandom(16).hex()
