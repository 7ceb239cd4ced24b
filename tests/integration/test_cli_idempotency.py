"""``--event-id`` on the command line: the actor's own key, bound to the command, episode and
facts, on SQLite and PostgreSQL."""

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


def _open(cli: CliRunner, mrn: str, *extra: str) -> str:
    opened = _run(cli, "open", "--facts", PROFILE, "--patient-ref", mrn, *extra)
    assert opened.exit_code == 0, opened.output
    return opened.stdout.splitlines()[-1]


def _state(cli: CliRunner, episode_id: str) -> str:
    return _run(cli, "show", episode_id).stdout.split()[2]


def _history(cli: CliRunner, episode_id: str) -> int:
    return len(orjson.loads(_run(cli, "history", episode_id, "--json").stdout))


def test_observe_then_close_another_episode_with_the_same_id_is_refused(cli: CliRunner) -> None:
    a, b = _open(cli, "MRN-A"), _open(cli, "MRN-B")
    observe = ["observe", a, "--facts", '{"pain_score": 6}', "--event-id", "e-1", "--actor", "ann"]
    assert _run(cli, *observe).exit_code == 0
    before = _history(cli, b)
    closed = _run(cli, "close", b, "--reason", "declined", "--event-id", "e-1", "--actor", "ann")
    assert closed.exit_code == 2
    lines = closed.stderr.strip().splitlines()
    assert len(lines) == 1 and "'e-1'" in lines[0] and "command" in lines[0]
    assert _state(cli, b) == "intake" and _history(cli, b) == before


@pytest.mark.parametrize(
    ("part", "args"),
    [
        ("body", ["--facts", '{"pain_score": 2}']),
        ("episode", ["--facts", '{"pain_score": 6}']),
    ],
)
def test_the_same_actors_id_with_other_facts_or_episode_is_refused(
    cli: CliRunner, part: str, args: list[str]
) -> None:
    a, b = _open(cli, "MRN-A"), _open(cli, "MRN-B")
    key = ["--event-id", "e-1", "--actor", "ann"]
    assert _run(cli, "observe", a, "--facts", '{"pain_score": 6}', *key).exit_code == 0
    target = b if part == "episode" else a
    before = _history(cli, target)
    refused = _run(cli, "observe", target, *args, *key)
    assert refused.exit_code == 2 and part in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert _history(cli, target) == before


def test_the_same_actors_id_and_command_replays_and_another_actors_applies(cli: CliRunner) -> None:
    a = _open(cli, "MRN-A")
    observe = ["observe", a, "--facts", '{"pain_score": 6}', "--event-id", "e-1"]
    assert _run(cli, *observe, "--actor", "ann").exit_code == 0
    before = _history(cli, a)
    again = _run(cli, *observe, "--actor", "ann")
    assert again.exit_code == 0 and "e-1 was already applied" in again.stdout
    assert _history(cli, a) == before
    theirs = _run(cli, *observe, "--actor", "bob")
    assert theirs.exit_code == 0 and "already applied" not in theirs.stdout
    assert _history(cli, a) == before + 1


def test_opening_with_the_same_id_as_another_actor_opens_a_second_episode(cli: CliRunner) -> None:
    first = _open(cli, "MRN-A", "--event-id", "o-1", "--actor", "ann")
    assert _open(cli, "MRN-A", "--event-id", "o-1", "--actor", "ann") == first
    assert _open(cli, "MRN-B", "--event-id", "o-1", "--actor", "bob") != first
