"""SQLite's WAL checkpoints off the commit path: a background thread per unit-of-work factory.

With ``synchronous = NORMAL`` a commit writes its pages to the WAL and does not sync; the sync
is paid by the checkpoint that copies the WAL back into the database file. SQLite runs that
checkpoint inside whichever commit takes the WAL past ``wal_autocheckpoint`` pages (1000 by
default): a group commit of a hundred decisions writes ~365 pages, so every third group paid a
checkpoint and its two fsyncs in its own COMMIT (measured: COMMIT 39 µs per decision with
checkpoints in it, 16–23 µs without; ``bench/bench_storage.py``).

``WalCheckpointer`` runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a connection of its own every
``interval`` seconds: a passive checkpoint never blocks a writer or a reader, and copies only
what no open read still needs. The factory's connections keep an automatic checkpoint as a
safety net (``WAL_AUTOCHECKPOINT_PAGES``, far above what the thread lets the WAL reach), so the
WAL stays bounded even if the thread falls behind; ``journal_size_limit``
(``storage.database.SQLITE_PRAGMAS``) truncates the file once a checkpoint has emptied it.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from pathlib import Path

WAL_AUTOCHECKPOINT_PAGES = 16_000  # a writer checkpoints itself only past this (~64 MiB)
CHECKPOINT_INTERVAL = 0.2  # seconds between the thread's passive checkpoints


class WalCheckpointer:
    """Passive checkpoints of one SQLite database file from a daemon thread, until ``stop``
    (or until its owner is garbage-collected: the thread holds no reference to either)."""

    def __init__(self, path: Path, interval: float = CHECKPOINT_INTERVAL) -> None:
        self.path = path
        self.done = [0]  # checkpoints that copied frames (for tests and benches)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_run,
            args=(path, interval, self._stop, self.done),
            name="sqlite-wal-checkpoint",
            daemon=True,
        )

    def start(self, owner: object | None = None) -> WalCheckpointer:
        self._thread.start()
        weakref.finalize(owner if owner is not None else self, self._stop.set)
        return self

    def stop(self) -> None:
        """Stop the thread (it closes its connection) and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _run(path: Path, interval: float, stop: threading.Event, done: list[int]) -> None:
    db: sqlite3.Connection | None = None
    while not stop.wait(interval):
        try:
            if db is None:
                if not path.exists():
                    continue
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA busy_timeout = 0")  # passive: never wait for anyone
            busy, _frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if copied > 0 and not busy:
                done[0] += 1
        except sqlite3.Error:
            pass  # busy, or the file went away: the next round (or the writers) will do it
    if db is not None:
        db.close()
