"""Appointment reads: those the scheduler must look at (booked for a day already past, still
booked), and the count of bookings outside their window that ``carepath measures`` lists.

One indexed read (``appointments_missed`` in ``storage/sql/queries.sql``); what counts as missed
is decided again by the engine on the episode's snapshot (``pathway.booking.record_missed``).
"""

from __future__ import annotations

from datetime import date

from storage.access import borrowed_cursor, dialect_sql
from storage.sql import QUERIES
from storage.unit_of_work import ReadyConnections

_MISSED = QUERIES["appointments_missed"]
_OUTSIDE = QUERIES["appointments_outside_window"]


def booked_before(connections: ReadyConnections, today: date, limit: int = 100) -> list[str]:
    """Ids of episodes whose appointment is still booked for a day before ``today``."""
    with borrowed_cursor(connections) as db:
        sql = dialect_sql(connections, _MISSED)
        rows = db.execute(sql, {"today": today.isoformat(), "limit": limit}).fetchall()
    return [row[0] for row in rows]


def outside_window(connections: ReadyConnections, pathway: str) -> int:
    """How many bookings of ``pathway``'s episodes were recorded outside their window."""
    with borrowed_cursor(connections) as db:
        sql = dialect_sql(connections, _OUTSIDE)
        params = {
            "pathway": pathway, "booked": '%"action":"book"%', "moved": '%"action":"move"%',
            "outside": '%"deviation":true%',
        }  # fmt: skip
        return int(db.execute(sql, params).fetchone()[0])
