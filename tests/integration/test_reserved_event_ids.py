"""The CLI refuses a pending timer's own event id (``--event-id``), and the timer still fires.

The same for the API: ``tests/integration/api/test_api_reserved_event_ids.py``; the pages:
``tests/integration/web/test_web_reserved_event_ids.py``; the use cases (replay, demo):
``tests/unit/test_reserved_event_ids.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pathway.definition import load_definition
from pathway.usecases import DefinitionRegistry, timer_event_id
from scheduler.worker import TimerWorker
from storage.unit_of_work import uow_factory
from tests.support.timer_cohort import open_idle_episodes, timer_firings

DEFS = DefinitionRegistry(load_definition())
INTAKE_TIMER = "FU-INTAKE-OVERDUE@1"


def _cli(*args: str):  # noqa: ANN202
    from carepath.cli import _register_groups, app

    _register_groups()
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    "command",
    [
        ["observe", "ID", "--facts", '{"pain_score": 4}'],
        ["request", "ID", "kyphoplasty"],
        ["close", "ID", "--reason", "declined"],
    ],
)
def test_the_cli_refuses_a_timers_event_id_and_the_timer_still_fires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CAREPATH_DATABASE_URL", url)
    factory = uow_factory(url)
    try:
        [eid] = open_idle_episodes(factory, DEFS, 1)
        reserved = timer_event_id(eid, INTAKE_TIMER)
        args = [eid if part == "ID" else part for part in command]
        result = _cli("episode", *args, "--event-id", reserved)
        assert result.exit_code == 2, result.output
        assert "event_id" in result.output and reserved in result.output
        assert "Traceback" not in result.output
        uow = factory()
        with uow:
            assert uow.find_outcome(reserved) is None
            assert uow.get_episode(eid).version == 1
        TimerWorker(factory, DEFS).sweep(datetime.now(UTC))
        assert INTAKE_TIMER in [b["timer"] for b in timer_firings(factory, [eid])[eid]]
    finally:
        factory.dispose()


def test_the_cli_refuses_an_enrolment_event_id_for_an_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREPATH_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = _cli("episode", "open", "--facts", '{"age": 70}', "--event-id", "enrol:abc")
    assert result.exit_code == 2 and "event_id" in result.output
