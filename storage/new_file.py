"""A new SQLite database built aside and moved into place only when complete.

``replay --database sqlite:///PATH`` where PATH does not exist yet fills a temporary file in
PATH's directory instead (``.PATH.PID.XXXX.building``, created 0600 and exclusively by
``tempfile.mkstemp``, as ``storage.file_modes`` creates a database file). No reader can see it,
and a crash discards it, so it is filled without a journal on disk and without fsyncs
(``storage.database.BUILDING_PRAGMAS``: the journal in memory, ``synchronous=OFF``). Once it is
complete it is switched to WAL, the mode every carepath connection uses, fsynced, and linked
to PATH (``os.link``: never over a file that appeared meanwhile, which stays as it is and is
reported by ``DatabaseAppeared``); the temporary name is then unlinked. On any exception
before that, and after it too, the temporary file and its companions are removed: PATH either
does not exist or holds the complete database. The file linked is the one ``mkstemp`` made
(same device and inode, opened without creating): one removed or replaced meanwhile fails the
replay rather than putting an empty or foreign database at PATH. (A process killed outright
cannot remove it: a stale ``.building`` file may remain beside PATH, never at PATH. The builder
holds an exclusive ``flock`` on its file for the whole build, so the next replay into PATH
removes only files nobody holds: not those of a replay still running, on this host or, through
a shared directory, another one, whose pid this host cannot see.)

The new file gets its schema from ``ensure_schema``, which gives an empty SQLite file the
cached template (``storage.schema_template``) without importing Alembic.

A ``PATH-wal`` or ``PATH-journal`` left by a deleted database is refused, before the build
and again just before the link (``storage.file_modes.OrphanedJournal``): SQLite would apply it
to the new file.

An existing file, an in-memory database and PostgreSQL are written in place, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from pathway.errors import PathwayError
from storage.file_modes import COMPANIONS, refuse_orphaned_journal

SUFFIX = ".building"


class DatabaseAppeared(PathwayError):
    """The database file was created by someone else while the replay built it."""


def new_sqlite_path(url: str) -> Path | None:
    """The path of a SQLite file URL whose file does not exist yet; else ``None``."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(str(parsed.database))
    if os.path.lexists(path) or not path.parent.is_dir():
        return None  # no directory: written in place, where SQLite's own error says so
    return path


@contextlib.contextmanager
def built_aside(path: Path) -> Iterator[Path]:
    """The temporary file to fill; on a clean exit (every connection to it closed) it is
    completed and becomes ``path``. The temporary file is removed whatever happens."""
    refuse_orphaned_journal(path)  # before any work: it would be refused at the link anyway
    _remove_stale(path)
    prefix = f".{path.name}.{os.getpid()}."  # whose it is, for a person looking
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=SUFFIX, dir=path.parent)
    aside = Path(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until the end: being built, not stale
        yield aside
        complete(aside, path, os.fstat(fd))
    finally:
        _remove(aside)
        os.close(fd)


def _remove_stale(path: Path) -> None:
    """Remove what a replay killed outright left beside ``path``: temporary files whose lock
    nobody holds (a replay still building holds its own), and their companions."""
    ours = re.compile(rf"\.{re.escape(path.name)}\.\d+\.[a-z0-9_]{{8}}{SUFFIX}")
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*{SUFFIX}"):
        if ours.fullmatch(stale.name) is None:  # another file's (``PATH.2``'s, say)
            continue
        try:
            fd = os.open(stale, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:
            continue  # gone meanwhile, or not ours to open
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # held: a replay is building it
        try:
            _remove(stale, ignore=OSError)  # another's, say: not ours to fail on
        finally:
            os.close(fd)


def _remove(file: Path, ignore: type[OSError] = FileNotFoundError) -> None:
    """``file`` and its SQLite companions (``-wal``, ``-shm``, ``-journal``), if there."""
    for name in (file.name, *(file.name + s for s in COMPANIONS)):
        with contextlib.suppress(ignore):
            os.unlink(file.with_name(name))


def complete(aside: Path, path: Path, made: os.stat_result) -> None:
    """Switch the filled file to WAL, fsync it and link it to ``path`` unless that exists.
    ``made``: the temporary file's status when it was created; another file at its name
    (removed and re-created, or replaced) is refused, never linked."""
    _same_file(aside, made)
    uri = f"file:{urllib.parse.quote(str(aside))}?mode=rw"  # never creates a missing file
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    finally:
        connection.close()  # the last connection: SQLite checkpoints and deletes the -wal
    if mode != "wal":
        raise PathwayError(f"{path}: could not switch the new database to WAL (got {mode!r})")
    _fsync(aside)
    _same_file(aside, made)
    refuse_orphaned_journal(path)  # a log left meanwhile would be applied to the new file
    try:
        os.link(aside, path)
    except FileExistsError:
        raise DatabaseAppeared(
            f"{path}: this database file was created while the replay was building it; "
            "it is left as it is and nothing was stored: run the replay again"
        ) from None
    except OSError as exc:  # a file system without hard links: no move that cannot clobber
        raise PathwayError(
            f"{path}: the new database cannot be linked into place ({exc.strerror}); "
            "create the file first (an empty file is replayed into in place)"
        ) from None
    _fsync(path.parent)  # the new name is durable before the temporary one goes


def _same_file(aside: Path, made: os.stat_result) -> None:
    try:
        now = os.stat(aside, follow_symlinks=False)
    except FileNotFoundError:
        now = None
    if now is None or (now.st_dev, now.st_ino) != (made.st_dev, made.st_ino):
        raise PathwayError(
            f"{aside}: the database being built was removed or replaced by another process; "
            "nothing was stored: run the replay again"
        )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
