"""Commands from the API, the pages and the CLI take "now" from PostgreSQL, as workers do.

A command fires its episode's due timers before it runs, so an API host whose clock ran three
days ahead would fire a timer due tomorrow today. On PostgreSQL the commands' clock is the
database's, checked against the host's (``scheduler.clock.command_clock``): a host off by more
than the tolerance is refused (API 503 ``clock-skewed``, CLI exit 2, one line), and nothing is
written; a host within it runs on the database's time. The host clock is patched as
``scheduler.clock.host_now``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pathway import usecases
from pathway.definition import load_definition
from pathway.usecases import DefinitionRegistry
from scheduler.clock import command_clock, host_now
from storage.claims import ClaimStore
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import timer_firings

DEFS = DefinitionRegistry(load_definition())
THREE_DAYS = timedelta(days=3)


def _ahead(by: timedelta):  # noqa: ANN202
    return lambda: datetime.now(UTC) + by


def _opened(url: str) -> tuple[str, datetime]:
    """An episode left in intake at the database's time: its intake timer falls due tomorrow."""
    factory = uow_factory(url)
    try:
        now = ClaimStore(factory).database_now() or datetime.now(UTC)
        applied = usecases.open_episode(factory(), DEFS, {"age": 70}, at=now, now=now, actor="t")
        return applied.outcome.episode_id, now
    finally:
        factory.dispose()


def _firings(url: str, episode_id: str) -> list:
    factory = uow_factory(url)
    try:
        return timer_firings(factory, [episode_id])[episode_id]
    finally:
        factory.dispose()


def _cli(*args: str):  # noqa: ANN202
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


def test_an_api_host_three_days_ahead_is_refused_and_fires_nothing(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carepath.api.app import create_api

    episode_id, now = _opened(fresh_postgres_url)
    app = create_api(database_url=fresh_postgres_url)
    with TestClient(app) as client:
        _, secret = app.state.tokens.create("coordinator-1", "coordinator", now)
        auth = {"Authorization": f"Bearer {secret}"}
        monkeypatch.setattr("scheduler.clock.host_now", _ahead(THREE_DAYS))
        body = {"facts": {"pain_score": 4}}
        refused = client.post(f"/api/episodes/{episode_id}/observations", json=body, headers=auth)
        assert refused.status_code == 503, refused.text
        problem = refused.json()
        assert problem["type"].endswith("clock-skewed")
        assert "ahead of the database" in problem["detail"]
        assert "commands on this host are refused" in problem["detail"]
        assert refused.headers["Retry-After"] == "60"
        assert _firings(fresh_postgres_url, episode_id) == []  # the intake timer did not fire
        monkeypatch.setattr("scheduler.clock.host_now", lambda: datetime.now(UTC))
        accepted = client.post(f"/api/episodes/{episode_id}/observations", json=body, headers=auth)
        assert accepted.status_code == 201, accepted.text
        assert _firings(fresh_postgres_url, episode_id) == []  # not due yet by the database


def test_a_cli_host_three_days_ahead_is_refused_in_one_line(
    fresh_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", fresh_postgres_url)
    episode_id, _ = _opened(fresh_postgres_url)
    monkeypatch.setattr("scheduler.clock.host_now", _ahead(THREE_DAYS))
    result = _cli("episode", "observe", episode_id, "--facts", '{"pain_score": 4}')
    assert result.exit_code == 2, result.output
    assert "commands on this host are refused" in result.output
    assert "Traceback" not in result.output
    assert _firings(fresh_postgres_url, episode_id) == []
    history = _cli("episode", "history", episode_id, "--json")
    assert '"observe"' not in history.output  # nothing was written
    monkeypatch.setenv("CAREPATH_CLOCK_TOLERANCE_SECONDS", str(4 * 86400))
    tolerated = _cli("episode", "observe", episode_id, "--facts", '{"pain_score": 4}')
    assert tolerated.exit_code == 0, tolerated.output
    # ... on the database's time: the intake timer, due tomorrow by it, still waits
    assert _firings(fresh_postgres_url, episode_id) == []


def test_on_sqlite_commands_run_on_the_hosts_clock_with_no_round_trip(tmp_path: Path) -> None:
    factory = uow_factory(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        assert command_clock(factory) is host_now
    finally:
        factory.dispose()
