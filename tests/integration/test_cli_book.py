"""``carepath episode book ID --window RULE --on DATE [--reason TEXT]`` (``--move``,
``--cancel``, ``--windows``) on SQLite and PostgreSQL: inside accepted, outside refused without a
reason (one line naming the window, the day and the window's days; nothing written) and a
deviation with one, moved, cancelled, shown by ``show --json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from typer.testing import CliRunner, Result

import carepath.cli.episode_book  # noqa: F401  (registers `episode book`)
from carepath.cli.episode import episode_app
from tests.support.appointment_world import L1_OPEN, L1_WORKUP


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", database_url)
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(episode_app, list(args))


def _in_care(cli: CliRunner) -> str:
    opened = _run(cli, "open", "--facts", json.dumps(L1_OPEN), "--patient-ref", "MRN-1")
    assert opened.exit_code == 0, opened.output
    ep = opened.stdout.splitlines()[-1]
    assert _run(cli, "observe", ep, "--facts", json.dumps(L1_WORKUP)).exit_code == 0
    return ep


def _care_day(cli: CliRunner, ep: str) -> Callable[[int], str]:
    """Care day n's date, counted from the episode's own care start (not from the test's
    clock, which may have passed midnight since the episode was opened)."""
    started = datetime.fromisoformat(str(_show(cli, ep)["care_started_at"]))
    return lambda n: (started + timedelta(days=n)).astimezone(UTC).date().isoformat()


def _show(cli: CliRunner, ep: str) -> dict[str, object]:
    return orjson.loads(_run(cli, "show", ep, "--json").stdout)  # type: ignore[no-any-return]


def test_book_outside_without_then_with_a_reason_move_and_cancel(cli: CliRunner) -> None:
    ep = _in_care(cli)
    _day = _care_day(cli, ep)
    listed = _run(cli, "book", ep, "--windows")
    assert (
        listed.exit_code == 0
        and f"FU-REASSESS  upcoming  {_day(28)} to {_day(42)}" in listed.stdout
    )
    version = _show(cli, ep)["version"]
    refused = _run(cli, "book", ep, "--window", "FU-REASSESS", "--on", _day(50))
    assert refused.exit_code == 2
    assert "FU-REASSESS" in refused.output and _day(50) in refused.output
    assert _day(28) in refused.output and _day(42) in refused.output
    assert "Traceback" not in refused.output and _show(cli, ep)["version"] == version
    outside = _run(cli, "book", ep, "--window", "FU-REASSESS", "--on", _day(50), "--reason", "away")
    assert outside.exit_code == 0, outside.output
    assert (
        outside.stdout.splitlines()[-1]
        == f"appointment: FU-REASSESS on {_day(50)} (booked)  OUTSIDE the window: away"
    )
    moved = _run(cli, "book", ep, "--window", "FU-REASSESS", "--on", _day(30), "--move")
    assert moved.exit_code == 0, moved.output
    assert _show(cli, ep)["appointment"] == {
        "window": "FU-REASSESS", "on": _day(30), "status": "booked", "reason": None,
        "deviation": False,
    }  # fmt: skip
    assert _run(cli, "book", ep, "--window", "FU-REASSESS", "--cancel").exit_code == 0
    assert _show(cli, ep)["appointment"] is None


BAD = [
    (["--window", "FU-REASSESS", "--on", "2026-W01-1"], "--on"),
    (["--window", "FU-REASSESS"], "--on"),
    (["--on", "2030-01-01"], "--window"),
    (["--window", "FU-NOPE", "--on", "2030-01-01"], "window"),
    (["--window", "FU-REASSESS", "--on", "2030-01-01", "--reason", "  "], "--reason"),
    (["--window", "FU-REASSESS", "--cancel", "--move"], "--move"),
    (["--window", "FU-REASSESS", "--on", "2030-01-01", "--event-id", "appointment:x"], "event"),
]


def test_bad_bookings_are_one_line_and_write_nothing(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Input checks, before any storage: on SQLite only, one episode for every case."""
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    cli = CliRunner()
    ep = _in_care(cli)
    version = _show(cli, ep)["version"]
    for args, words in BAD:
        result = _run(cli, "book", ep, *args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output and "Traceback" not in result.output, args
    assert _show(cli, ep)["version"] == version
