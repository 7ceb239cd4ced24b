"""The command line keeps to the API's input rules (``carepath.inputs``): a bad value is one
line on stderr naming the option, exit 2, nothing written; never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from storage.unit_of_work import uow_factory


def run_cli(*args: str) -> Any:
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", url)
    return url


def _episodes(url: str) -> list[str]:
    factory = uow_factory(url)
    try:
        with factory() as uow:
            return list(uow.episode_ids())
    finally:
        factory.dispose()


REFUSED = {
    "year 1 at +14:00": (["--at", "0001-01-01T00:00:00+14:00"], "--at"),
    "year 9999": (["--at", "9999-12-31T23:00:00Z"], "--at"),
    "not a time": (["--at", "yesterday"], "--at"),
    "control character in the patient ref": (["--patient-ref", "MRN\x01-1"], "--patient-ref"),
    "tab in the patient ref": (["--patient-ref", "MRN\t1"], "--patient-ref"),
    "100,000-character label": (["--label", "x" * 100_000], "--label"),
    "escape in the label": (["--label", "\x1b[31mred"], "--label"),
    "token actor": (["--actor", "token:someone"], "--actor"),
    "token actor, capitals": (["--actor", "TOKEN:someone"], "--actor"),
    "control character in the actor": (["--actor", "nurse\x07"], "--actor"),
    "lone surrogate in the label": (["--label", "\udcff"], "--label"),
}


@pytest.mark.parametrize(("args", "flag"), REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_option_is_one_line_naming_it_and_nothing_is_opened(
    database: str, args: list[str], flag: str
) -> None:
    result = run_cli("episode", "open", "--patient-ref", "MRN-1", *args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"carepath: error: {flag}: got ")
    assert "Traceback" not in result.output
    assert _episodes(database) == []


def test_good_options_open_the_episode(database: str) -> None:
    result = run_cli(
        "episode", "open", "--patient-ref", "MRN-1", "--label", "L1 fracture",
        "--actor", "nurse.jones", "--at", "2026-03-02T09:30:00+14:00",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _episodes(database) == [result.output.strip().splitlines()[-1]]


@pytest.mark.parametrize(
    "args",
    [
        ["episode", "show", "a\x01b"],
        ["episode", "history", "\udcff"],
        ["episode", "explain", "a\x01b"],
        ["episode", "explain", "e1", "--at", "yesterday"],
        ["episode", "observe", "a\x00b", "--facts", "{}"],
        ["episode", "request", "e1", "vertebro\x01plasty"],
        ["episode", "close", "e1", "--reason", "declined\x1b"],
        ["episode", "observe", "e1", "--facts", '{"pain_score": 3}', "--actor", "token:x"],
        ["audit", "verify", "--episode", "\udcff"],
        ["audit", "export", "--episode", "a\x00b"],
    ],
)
def test_bad_arguments_of_the_other_commands_are_refused_too(
    database: str, args: list[str]
) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("carepath: error: ") and "Traceback" not in result.output
