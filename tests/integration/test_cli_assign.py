"""``carepath episode assign ID --to NAME`` (``me``: the actor; ``none`` or ``--unassign``:
nobody), on SQLite and PostgreSQL: audited, shown by ``show`` and ``history``, bad names refused
on one line with nothing written, ``--event-id`` the actor's own key as on every write."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner, Result

from carepath.cli.episode import episode_app

PROFILE = '{"age": 72, "sex": "female", "first_fracture": true}'


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", database_url)
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(episode_app, list(args))


def _open(cli: CliRunner) -> str:
    opened = _run(cli, "open", "--facts", PROFILE, "--patient-ref", "MRN-1")
    assert opened.exit_code == 0, opened.output
    return opened.stdout.splitlines()[-1]


def _show(cli: CliRunner, episode_id: str) -> dict[str, object]:
    return orjson.loads(_run(cli, "show", episode_id, "--json").stdout)  # type: ignore[no-any-return]


def _assigns(cli: CliRunner, episode_id: str) -> list[tuple[object, object]]:
    entries = orjson.loads(_run(cli, "history", episode_id, "--json").stdout)
    return [(e["owner"], e["actor"]) for e in entries if e["kind"] == "assign"]


def test_assign_reassign_and_unassign_are_audited_and_shown(cli: CliRunner) -> None:
    ep = _open(cli)
    assert _show(cli, ep)["owner"] is None
    first = _run(cli, "assign", ep, "--to", "alice", "--actor", "ann")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1] == "owner: alice"
    assert _show(cli, ep)["owner"] == "alice"
    assert _run(cli, "assign", ep, "--to", "me", "--actor", "bob").exit_code == 0
    assert _show(cli, ep)["owner"] == "bob"
    assert "owner: bob" in _run(cli, "show", ep).stdout
    assert _run(cli, "assign", ep, "--to", "none", "--actor", "ann").exit_code == 0
    assert _show(cli, ep)["owner"] is None
    assert _run(cli, "assign", ep, "--to", "carol", "--actor", "ann").exit_code == 0
    assert _run(cli, "assign", ep, "--unassign", "--actor", "ann").exit_code == 0
    assert _assigns(cli, ep) == [
        ("alice", "ann"), ("bob", "bob"), (None, "ann"), ("carol", "ann"), (None, "ann"),
    ]  # fmt: skip
    text = _run(cli, "history", ep).stdout
    assert "assign by bob: intake" in text and "    owner: carol" in text
    assert _show(cli, ep)["state"] == "intake"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--to", "token:alice"], "--to: got 'token:alice'"),
        (["--to", "a\x01b"], "--to: got"),
        (["--to", "x" * 201], "--to: got"),
        (["--to", " alice"], "leading or trailing spaces"),
        ([], "--to: give a coordinator's name"),
        (["--to", "alice", "--unassign"], "not both"),
    ],
)
def test_a_bad_assignment_is_one_line_exit_2_and_writes_nothing(
    cli: CliRunner, args: list[str], words: str
) -> None:
    ep = _open(cli)
    version = _show(cli, ep)["version"]
    result = _run(cli, "assign", ep, *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert _show(cli, ep)["version"] == version


def test_the_actors_key_applies_once_and_is_refused_for_another_owner(cli: CliRunner) -> None:
    ep = _open(cli)
    key = ["--event-id", "as-1", "--actor", "ann"]
    assert _run(cli, "assign", ep, "--to", "alice", *key).exit_code == 0
    again = _run(cli, "assign", ep, "--to", "alice", *key)
    assert again.exit_code == 0 and "already applied" in again.stdout
    other = _run(cli, "assign", ep, "--to", "bob", *key)
    assert other.exit_code == 2 and "'as-1'" in other.stderr
    assert _show(cli, ep)["owner"] == "alice" and len(_assigns(cli, ep)) == 1


def test_an_unknown_episode_is_one_line(cli: CliRunner) -> None:
    result = _run(cli, "assign", "no-such", "--to", "alice")
    assert result.exit_code == 2 and "no-such" in result.stderr
