"""Values in and out of columns: times as aware UTC on both databases, and JSON.

SQLite has no time type: times are stored as fixed-width UTC text (SQLAlchemy's own SQLite
format, so ``UTCDateTime`` in ``tables.py`` reads them too) whose text order is time order.
psycopg passes aware datetimes to TIMESTAMPTZ as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

TimeParam = Callable[[datetime | None], Any]


_TEXT_OF_TIME: dict[datetime, str] = {}  # the few times an episode repeats on every write


def sqlite_time(value: datetime | None) -> str | None:
    """UTC as fixed-width text (SQLAlchemy's SQLite format), so text order is time order."""
    if value is None:
        return None
    text = _TEXT_OF_TIME.get(value)
    if text is None:
        if len(_TEXT_OF_TIME) > 4096:
            _TEXT_OF_TIME.clear()
        utc = value if value.tzinfo is UTC else _aware(value).astimezone(UTC)
        # UTC's text ends "+00:00": cut off, rather than a naive copy made to print (~0.3 µs
        # of a decision whose clock advanced: its time is new, so it misses the cache above)
        text = _TEXT_OF_TIME[value] = utc.isoformat(" ", "microseconds")[:-6]
    return text


def postgres_time(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: expected a timezone-aware UTC time")
    return value


def read_time(value: Any) -> datetime:
    """A stored time (text from SQLite or JSON, datetime from psycopg) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def read_json(value: Any) -> Any:
    """JSON columns come back as text from sqlite3 and already parsed from psycopg."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()
