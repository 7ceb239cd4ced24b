"""The SQLite database's files are the owner's alone (mode 0600): they hold patient records.

``secure_sqlite_files(path)`` runs before the first connection: it creates the database file
with mode 0600 if it does not exist yet (``O_CREAT | O_EXCL``, so no umask and no race widens
it), and tightens an existing database, ``-wal`` or ``-shm`` file that the group or others can
read or write, with a warning that names the file and both modes. SQLite then creates its
``-wal`` and ``-shm`` files with the database file's mode; ``secure_companions`` is called on
every new connection too, so that a companion file made otherwise is tightened as well.
A file owned by someone else cannot be tightened: that is a warning, not a refusal to run.
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


def secure_sqlite_files(path: Path) -> None:
    """Create the database file 0600 if missing; tighten it and its companions if too open."""
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
