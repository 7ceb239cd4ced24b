"""SQLite's time text (storage.columns.sqlite_time): SQLAlchemy's own format, in UTC, fixed width,
so ``UTCDateTime`` reads it back and text order is time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import sqlite

from storage.columns import read_time, sqlite_time
from storage.tables import UTCDateTime

T0 = datetime(2026, 1, 5, 9, 30, 15, 123456, tzinfo=UTC)
TIMES = (
    T0,
    T0.replace(microsecond=0),  # still six digits of microseconds: fixed width
    T0 + timedelta(days=400, microseconds=7),
    datetime(2026, 1, 5, 11, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),  # = T0
)


@pytest.mark.parametrize("at", TIMES)
def test_the_text_is_the_utc_time_in_sqlalchemys_sqlite_format(at: datetime) -> None:
    text = sqlite_time(at)
    naive = at.astimezone(UTC).replace(tzinfo=None)
    assert text == naive.isoformat(" ", "microseconds") and len(text) == 26
    stored = sqlite.DATETIME().bind_processor(sqlite.dialect())(naive)
    assert text == stored  # what SQLAlchemy itself would have written
    assert read_time(text) == at and UTCDateTime().process_result_value(naive, None) == at


def test_text_order_is_time_order() -> None:
    texts = [sqlite_time(t) for t in sorted(TIMES[:3])]
    assert texts == sorted(texts)


def test_none_stays_none_and_a_naive_time_is_refused() -> None:
    assert sqlite_time(None) is None
    with pytest.raises(ValueError, match="naive datetime"):
        sqlite_time(datetime(2026, 1, 5, 9))
