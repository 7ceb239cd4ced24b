"""``carepath serve`` and the app behind it: the embedded scheduler's lifespan, the demo load."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carepath.settings import Settings


def _count_episodes(url: str) -> int:
    from storage.unit_of_work import uow_factory

    factory = uow_factory(url)
    try:
        uow = factory()
        with uow:
            return len(uow.episode_ids())
    finally:
        factory.dispose()


def test_server_lifespan_runs_the_embedded_scheduler_which_fires_due_timers(
    tmp_path: Path,
) -> None:
    from carepath.server import build_app
    from pathway import usecases

    app = build_app(Settings(f"sqlite:///{tmp_path / 's.db'}", None))
    now = datetime.now(UTC)
    opened = usecases.open_episode(
        app.state.uow_factory(), app.state.definitions, {"age": 70}, at=now - timedelta(days=2),
        now=now, actor="test",
    )  # fmt: skip
    eid = opened.outcome.episode_id
    with TestClient(app):
        assert app.state.scheduler is not None
        deadline = time.monotonic() + 60  # a hang guard
        while True:  # FU-INTAKE-OVERDUE was due a day ago: the first sweep fires it
            uow = app.state.uow_factory()
            with uow:
                if uow.get_episode(eid).open_escalations():
                    break
            assert time.monotonic() < deadline, "the embedded scheduler fired nothing"
            time.sleep(0.1)
    assert app.state.scheduler is None


def test_demo_loads_its_cohort_once_and_issues_fresh_tokens(tmp_path: Path) -> None:
    from carepath.bootstrap import current_definitions
    from carepath.demo import cohort, load_demo
    from pathway.usecases import DefinitionRegistry
    from storage.access import TokenStore
    from storage.unit_of_work import uow_factory

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    definitions = DefinitionRegistry(current_definitions())
    now = datetime.now(UTC)
    first = load_demo(url, definitions, now, history=False)  # the history: test_demo.py
    second = load_demo(url, definitions, now + timedelta(minutes=1), history=False)
    episodes = _count_episodes(url)  # the patients' and the FLS episodes some of them enrolled
    assert episodes > len(cohort())
    assert (first.loaded.created, first.loaded.present) == (episodes, 0)
    assert (second.loaded.created, second.loaded.present) == (0, episodes)
    factory = uow_factory(url)
    try:
        store = TokenStore(factory.connections)
        later = now + timedelta(minutes=2)
        for role in ("coordinator", "admin"):
            assert store.authenticate(first.tokens[role], later) is None  # revoked
            token = store.authenticate(second.tokens[role], later)
            assert token is not None and token.role == role
    finally:
        factory.dispose()


def _cli() -> typer.Typer:
    from carepath.cli.serve import serve_command

    app = typer.Typer()
    app.command("serve")(serve_command)
    app.command("other", hidden=True)(lambda: None)  # keeps "serve" a subcommand
    return app


def test_serve_demo_loads_prints_tokens_and_runs_uvicorn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn
    from fastapi import FastAPI

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.setattr("carepath.demo.history_cohort", list)  # the history: test_demo.py
    result = CliRunner().invoke(_cli(), ["serve", "--demo", "--port", "8123", "--no-scheduler"])
    assert result.exit_code == 0, result.output
    assert "43 episode(s) created" in result.output  # 32 patients, 11 enrolled
    assert "coordinator  cpt_" in result.output and "admin        cpt_" in result.output
    assert "http://127.0.0.1:8123/" in result.output
    ((app, kwargs),) = calls
    assert isinstance(app, FastAPI) and kwargs["port"] == 8123 and kwargs["host"] == "127.0.0.1"


def test_serve_with_workers_gives_uvicorn_the_app_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from carepath.server import SCHEDULER_ENV

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'serve.db'}")
    monkeypatch.setenv(SCHEDULER_ENV, "unset")  # so that monkeypatch restores it afterwards
    result = CliRunner().invoke(_cli(), ["serve", "--workers", "3", "--no-scheduler"])
    assert result.exit_code == 0, result.output
    ((app, kwargs),) = calls
    assert app == "carepath.server:app_from_env"
    assert kwargs["factory"] is True and kwargs["workers"] == 3
    assert os.environ[SCHEDULER_ENV] == "0"  # read by each worker's app_from_env
