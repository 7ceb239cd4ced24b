"""The whole audit log read in keyset chunks, for exports that must not hold it in memory.

Why chunks and not one cursor: a single SELECT over 100,000 episodes makes sqlite3 and psycopg
(client-side cursor) hold every row at once; a keyset walk on the primary key (episode id,
seq) reads ``chunk`` rows per statement, each starting where the last one stopped, so memory
stays flat in the size of the log. Entries come in (episode, seq) order: an episode's entries
are contiguous, which lets the XES writer (``carepath/xes.py``) close a trace as soon as the
next episode begins.

Each statement sees the log as it is when it runs: an entry appended during the export to an
episode already written is not in it, one appended to an episode still ahead is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.columns import read_time
from storage.sql import QUERIES, for_driver

_CHUNK = QUERIES["audit_log_chunk"]


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One audit entry with the episode facts an event log names its trace by."""

    episode_id: str
    pathway: str
    patient_ref: str | None
    seq: int
    kind: str
    actor: str
    at: datetime
    payload: bytes


def audit_entries(uow: Any, pathway: str | None = None, chunk: int = 2000) -> Iterator[EntryRow]:
    """Every audit entry (of ``pathway``'s episodes, if given), in (episode, seq) order.

    ``uow`` is an open ``SqlUnitOfWork``: its connection runs the statements."""
    dialect = uow.engine.dialect.name
    sql = for_driver(_CHUNK.format(pathway="AND e.pathway = :pathway" if pathway else ""), dialect)
    db = uow.connection()
    after: tuple[str, int] = ("", 0)
    while True:
        params = {"after_id": after[0], "after_seq": after[1], "limit": chunk}
        rows = db.execute(sql, params | {"pathway": pathway} if pathway else params).fetchall()
        for episode_id, path, patient_ref, seq, kind, actor, at, payload in rows:
            yield EntryRow(
                episode_id,
                path,
                patient_ref,
                seq,
                kind,
                actor,
                read_time(at),
                payload.encode() if isinstance(payload, str) else bytes(payload),
            )
        if len(rows) < chunk:
            return
        after = (rows[-1][0], rows[-1][3])
