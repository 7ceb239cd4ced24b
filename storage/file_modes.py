"""The SQLite database's files are the owner's alone (mode 0600): they hold patient records.

``secure_sqlite_files(path)`` runs before the first connection: it creates the database file
with mode 0600 if it does not exist yet (``O_CREAT | O_EXCL``, so no umask and no race widens
it), and tightens an existing database, ``-wal`` or ``-shm`` file that the group or others can
read or write, with a warning that names the file and both modes. SQLite then creates its
``-wal`` and ``-shm`` files with the database file's mode; ``secure_companions`` is called on
every new connection too, so that a companion file made otherwise is tightened as well.
A file owned by someone else cannot be tightened: that is a warning, not a refusal to run.

A database file that is missing while its ``-wal`` or ``-journal`` is there is refused
(``OrphanedJournal``): SQLite applies the log it finds beside a database of that name with no
check that the two belong together, so a new database made there would silently take the old
one's pages (its tables and rows replaced by the deleted database's). The log is left for a
person to move away, or to put back with its database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("carepath.storage")

MODE = 0o600
COMPANIONS = ("-wal", "-shm", "-journal")
LOGS = ("-wal", "-journal")  # the companions SQLite applies to the database beside them


class OrphanedJournal(Exception):
    """A write-ahead log or rollback journal beside a database file that is not there."""


def refuse_orphaned_journal(path: Path) -> None:
    """Raise ``OrphanedJournal`` if ``path`` does not exist but its ``-wal`` or ``-journal``
    does: a database created at ``path`` would take that log's pages as its own."""
    if os.path.lexists(path):
        return
    for suffix in LOGS:
        log_file = path.with_name(path.name + suffix)
        if os.path.lexists(log_file):
            raise OrphanedJournal(
                f"{log_file} is there but its database {path.name} is not (deleted or moved?): "
                f"SQLite would apply it to a new database at {path}, replacing that database's "
                f"tables and rows with the old one's. Move {log_file.name} away, or put its "
                "database back, and try again"
            )


def secure_sqlite_files(path: Path) -> None:
    """Create the database file 0600 if missing (never beside a log left by a deleted one);
    tighten it and its companions if too open."""
    refuse_orphaned_journal(path)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, MODE)
    except FileExistsError:
        _tighten(path)
    except OSError:
        return  # a directory that does not exist: SQLite's own error says so better
    else:
        os.close(fd)
    secure_companions(path)


def open_private(path: str | Path) -> BinaryIO:
    """Open ``path`` for writing, created 0600 (no umask widens it) or truncated and tightened
    if it exists: for exports of patient records (``audit export --out``)."""
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, MODE)
    with contextlib.suppress(OSError):  # another owner's file: writable, left as they set it
        os.fchmod(fd, MODE)
    return os.fdopen(fd, "wb")


def secure_companions(path: Path) -> None:
    """Tighten the ``-wal``, ``-shm`` and ``-journal`` files beside ``path`` if too open."""
    for suffix in COMPANIONS:
        _tighten(path.with_name(path.name + suffix))


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077 == 0:
        return
    try:
        os.chmod(path, mode & 0o700 | MODE)
    except OSError as exc:
        log.warning(
            "database file %s is mode %o (readable by others) and cannot be tightened: %s",
            path,
            mode,
            exc.strerror,
        )
        return
    log.warning("database file %s was mode %o: tightened to %o", path, mode, mode & 0o700 | MODE)
