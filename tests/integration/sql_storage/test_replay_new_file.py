"""``replay --database sqlite:///PATH`` where PATH does not exist yet builds the file aside
(``storage.new_file``, ``carepath.replay.into_database``): PATH appears only complete, holding
exactly what a replay into an existing file holds (every table, the schema, WAL, mode 0600),
never over a file that appeared meanwhile; an exception leaves no file at PATH and no temporary
file; scenarios that fail are reported after the good ones are stored, as before."""

from __future__ import annotations

import fcntl
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from carepath.audit_verify import verify_database
from carepath.replay import grouped, into_database
from carepath.replay.cohort import write_cohort
from carepath.replay.into_database import replay_into
from pathway.errors import InvalidScenario, PathwayError
from storage import database, new_file
from storage.audit_rows import verify_uow_rows
from storage.new_file import DatabaseAppeared
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from tests.conftest import TEST_AUDIT_SECRET
from tests.integration.sql_storage.test_replay_grouped import (
    L1_L2,
    SHIPPED,
    counted_ids,
    masked,
    table_rows,
)
from tests.support.episode_driver import DEFS
from tests.support.imports import imports_module
from tests.support.protocol import REPOSITORY
from tests.support.terminal import ctrl_c_as_at_a_terminal

FILES = [s.source for s in L1_L2[:6]]


def key() -> Any:
    from pathway.audit import AuditKey

    return AuditKey(TEST_AUDIT_SECRET)


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def opened(path: Path) -> SqlUnitOfWorkFactory:
    return uow_factory(url(path), key())


def schema(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"
        ).fetchall()


def journal_mode(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        db.close()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if new_file.SUFFIX in p.name)


def test_a_new_file_holds_what_an_existing_file_holds_in_wal_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = 1  # counted ids: one process (see the next test for two workers)
    existing, new = tmp_path / "existing.db", tmp_path / "new.db"
    os.close(os.open(existing, os.O_CREAT | os.O_WRONLY, 0o600))  # exists: written in place
    counted_ids(monkeypatch)
    before = replay_into(url(existing), FILES, SHIPPED, key(), workers=workers)
    counted_ids(monkeypatch)
    seen: list[Any] = []
    real = into_database.replay_all
    monkeypatch.setattr(
        into_database,
        "replay_all",
        lambda *a, **k: (seen.append(database.is_building(a[2].engine)), real(*a, **k))[1],
    )
    after = replay_into(url(new), FILES, SHIPPED, key(), workers=workers)
    assert seen == [True]  # the new file was built aside; the existing one was not
    assert [r.output for r in after] == [r.output for r in before]
    assert all(r.output["audit_verified"] for r in after)
    assert journal_mode(new) == journal_mode(existing) == "wal"
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert schema(new) == schema(existing)
    a, b = opened(existing), opened(new)
    assert table_rows(b) == table_rows(a) and len(table_rows(b)["episodes"]) >= len(FILES)
    assert verify_database(b(), None).ok
    with b() as uow:
        rows = verify_uow_rows(uow, SHIPPED.get)
        assert rows is not None and rows.ok
    a.dispose()
    b.dispose()
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "new.db-wal").exists()  # checkpointed: the file alone is the database


def test_two_workers_build_a_new_file_as_they_write_an_existing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grouped, "PARALLEL_FROM", 0)  # two workers even for six files
    existing, new = tmp_path / "existing.db", tmp_path / "new.db"
    os.close(os.open(existing, os.O_CREAT | os.O_WRONLY, 0o600))
    before = replay_into(url(existing), FILES, SHIPPED, key(), workers=2)
    after = replay_into(url(new), FILES, SHIPPED, key(), workers=2)
    assert masked([r.output for r in after]) == masked([r.output for r in before])
    assert all(r.output["audit_verified"] for r in after)
    assert journal_mode(new) == "wal" and stat.S_IMODE(new.stat().st_mode) == 0o600
    assert schema(new) == schema(existing)
    a, b = opened(existing), opened(new)
    counts = {name: len(rows) for name, rows in table_rows(a).items()}
    assert {name: len(rows) for name, rows in table_rows(b).items()} == counts
    assert verify_database(b(), None).ok
    a.dispose()
    b.dispose()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_an_exception_mid_way_leaves_no_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(grouped, "PARALLEL_FROM", 0)
    real, calls = grouped._transaction, []

    def second_chunk_fails(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:  # a worker's second chunk, or this process's
            raise RuntimeError("disk on fire")
        return real(*args)

    monkeypatch.setattr(grouped, "_transaction", second_chunk_fails)
    path = tmp_path / "new.db"
    with pytest.raises(RuntimeError, match="disk on fire"):
        replay_into(url(path), FILES, DEFS, key(), workers=workers, per_transaction=2)
    assert workers == 2 or calls == [1, 1]  # the first chunk was committed
    assert not path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_worker_killed_mid_way_leaves_no_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grouped, "PARALLEL_FROM", 0)
    real, parent, calls = grouped._transaction, os.getpid(), []

    def killed_at_its_second_chunk(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2 and os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    monkeypatch.setattr(grouped, "_transaction", killed_at_its_second_chunk)
    path = tmp_path / "new.db"
    with pytest.raises(BrokenProcessPool):
        replay_into(url(path), FILES, DEFS, key(), workers=2, per_transaction=1)
    assert not path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_that_appears_meanwhile_is_not_clobbered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.db"
    real = into_database.replay_all

    def someone_else_creates_it(*args: Any, **kwargs: Any) -> Any:
        done = real(*args, **kwargs)
        path.write_bytes(b"theirs")
        return done

    monkeypatch.setattr(into_database, "replay_all", someone_else_creates_it)
    with pytest.raises(DatabaseAppeared, match="created while the replay was building it"):
        replay_into(url(path), FILES, DEFS, key())
    assert path.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_files_are_reported_after_the_good_ones_are_in_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(grouped, "PARALLEL_FROM", 0)
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    path = tmp_path / "db" / "new.db"
    path.parent.mkdir()
    with pytest.raises(InvalidScenario, match="broken.json: not valid JSON"):
        replay_into(
            url(path), [FILES[0], str(bad), FILES[1], FILES[2]], DEFS, key(), workers=workers
        )
    factory = opened(path)
    with factory() as uow:
        assert len(uow.episode_ids()) == 3
    assert verify_database(factory(), None).ok
    factory.dispose()
    assert journal_mode(path) == "wal" and leftovers(path.parent) == []


def test_a_scenario_that_cannot_be_stored_rolls_back_alone_in_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The savepoint of a scenario whose rows fail is rolled back: with the journal off
    (``journal_mode=OFF``) that would be undefined; in memory it is exact."""
    from pathway import usecases

    monkeypatch.setattr(usecases, "time_ordered_id", lambda now: "ep-same")  # all one episode
    existing, new = tmp_path / "existing.db", tmp_path / "new.db"
    os.close(os.open(existing, os.O_CREAT | os.O_WRONLY, 0o600))
    files = [FILES[0], FILES[1], FILES[0]]
    for path in (existing, new):
        counted_ids_but_episodes(monkeypatch)
        with pytest.raises(PathwayError, match="not stored"):
            replay_into(url(path), files, DEFS, key(), workers=1)
    a, b = opened(existing), opened(new)
    assert table_rows(b) == table_rows(a) and len(table_rows(b)["episodes"]) == 1
    assert verify_database(b(), None).ok
    a.dispose()
    b.dispose()
    with sqlite3.connect(new) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def counted_ids_but_episodes(monkeypatch: pytest.MonkeyPatch) -> None:
    import itertools

    from pathway import usecases

    counter = itertools.count()
    monkeypatch.setattr(usecases, "new_event_id", lambda now=None: f"event-{next(counter)}")


def test_an_existing_file_and_postgres_are_written_in_place(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    monkeypatch.setattr(new_file, "built_aside", None)  # would fail if it were used
    got = replay_into(database_url, FILES[:2], DEFS, key(), workers=1)
    assert all(r.output["audit_verified"] for r in got)
    assert leftovers(tmp_path) == []


def run_cli(cwd: Path, *args: str, **kwargs: Any) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "carepath.cli", *args],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def building_size(directory: Path) -> int:
    sizes = [(directory / name).stat().st_size for name in leftovers(directory)]
    return max(sizes, default=0)


def wait_unlocked(path: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    with path.open("rb") as file:
        while True:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return  # closing the file releases it
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{path.name} still locked"
                time.sleep(0.02)


def test_a_killed_replay_leaves_no_database_at_the_path(tmp_path: Path) -> None:
    names = [p.name for p in write_cohort(tmp_path, grouped.PARALLEL_FROM)]
    path = tmp_path / "new.db"
    proc = run_cli(
        tmp_path, "replay", "--json", "--database", url(path), "--workers", "2", *names,
        start_new_session=True, preexec_fn=ctrl_c_as_at_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while building_size(tmp_path) < 400_000 and proc.poll() is None:  # some chunks written
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert proc.poll() is None, "the replay ended before it was seen building"
    os.killpg(proc.pid, signal.SIGKILL)  # the process and its workers: no clean-up at all
    proc.wait()
    assert not path.exists()
    left = leftovers(tmp_path)
    assert left and all(name.startswith(f".new.db.{proc.pid}.") for name in left)
    wait_unlocked(tmp_path / left[0])  # its forked workers share the lock until they are gone
    # A replay still building holds its file's lock, whatever its pid says (another host's
    # replay, through a shared directory, has a pid this one cannot see): kept.
    live = tmp_path / f".new.db.{proc.pid + 1}.abcd1234.building"
    other = tmp_path / f".new.db.{proc.pid}.{proc.pid}.abcd1234.building"  # new.db.N's
    for kept in (live, other):
        kept.write_bytes(b"")
    with live.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        replay_into(url(path), FILES[:1], DEFS, key())  # the next one removes the dead one's
    assert leftovers(tmp_path) == sorted([live.name, other.name])


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_temporary_file_removed_or_replaced_meanwhile_is_never_linked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    real, path = new_file.complete, tmp_path / "new.db"

    def meddled(aside: Path, target: Path, made: os.stat_result) -> None:
        aside.unlink()  # another process at work in the directory
        if how == "replaced":
            aside.write_bytes(b"")
        real(aside, target, made)

    monkeypatch.setattr(new_file, "complete", meddled)
    with pytest.raises(PathwayError, match="removed or replaced by another process"):
        replay_into(url(path), FILES[:1], DEFS, key())
    assert not path.exists() and leftovers(tmp_path) == []


def test_an_interrupted_replay_leaves_no_file_and_no_temporary_file(tmp_path: Path) -> None:
    names = [p.name for p in write_cohort(tmp_path, grouped.PARALLEL_FROM)]
    path = tmp_path / "new.db"
    proc = run_cli(
        tmp_path, "replay", "--json", "--database", url(path), "--workers", "2", *names,
        start_new_session=True, preexec_fn=ctrl_c_as_at_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while building_size(tmp_path) < 400_000 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert proc.poll() is None, "the replay ended before it was seen building"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the process and its workers
    assert proc.wait(timeout=60) == 130
    assert not path.exists() and leftovers(tmp_path) == []


def test_cli_replay_into_a_new_file_then_audit_verify_passes(tmp_path: Path) -> None:
    from carepath.cli import _register_groups, app

    path = tmp_path / "new.db"
    files = [str(REPOSITORY / f) for f in FILES]
    done = run_cli(tmp_path, "replay", "--json", "--database", url(path), *files)
    assert done.wait(timeout=300) in (0, 1), done.stderr.read()[-2000:]
    _register_groups()
    result = CliRunner().invoke(app, ["audit", "verify"], env={"CAREPATH_DATABASE_URL": url(path)})
    assert result.exit_code == 0, result.output
    assert leftovers(tmp_path) == []


def test_a_file_system_without_hard_links_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(*args: Any) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(new_file.os, "link", no_links)
    path = tmp_path / "new.db"
    with pytest.raises(PathwayError, match="cannot be linked into place .*create the file first"):
        replay_into(url(path), FILES[:1], DEFS, key())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_directory_is_the_database_error_it_always_was(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "replay", "--json", "--database", url(tmp_path / "no" / "x.db"),
                   FILES[0])  # fmt: skip
    assert done.wait(timeout=120) == 2
    assert done.stderr.read().decode().strip() == (
        "carepath: error: database: OperationalError: unable to open database file"
    )


def test_the_scripts_head_is_alembics() -> None:
    assert database.scripts_head() == database.alembic_head()


@pytest.mark.parametrize(
    ("scripts", "head"),
    [
        ({"a": ('"a"', "None"), "b": ('"b"', '"a"'), "c": ("'c'", "'b'")}, "c"),
        ({"a": ('"a"', "None"), "b": ('"b"', '"a"'), "c": ('"c"', '"a"')}, None),  # two heads
        ({"a": ('"a"', "None"), "m": ('"m"', '("a", "x")')}, None),  # a merge
        ({"a": ("make_id()", "None")}, None),
    ],
)
def test_a_head_the_scripts_do_not_say_plainly_is_left_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, Any], head: str | None
) -> None:
    (tmp_path / "versions").mkdir()
    for name, (revision, down) in scripts.items():
        text = f'"""{name}"""\n\nrevision = {revision}\ndown_revision = {down}\n'
        (tmp_path / "versions" / f"{name}.py").write_text(text)
    monkeypatch.setattr(database, "MIGRATIONS", tmp_path)
    assert database.scripts_head() == head


def test_a_new_file_gets_its_schema_without_importing_alembic(tmp_path: Path) -> None:
    replay_into(url(tmp_path / "warm.db"), FILES[:1], DEFS, key())  # the template is cached
    code = (
        "from carepath.replay.into_database import replay_into\n"
        "from tests.support.episode_driver import DEFS\n"
        f"replay_into({url(tmp_path / 'new.db')!r}, [{FILES[0]!r}], DEFS, None)"
    )
    assert not imports_module(code, "alembic")
