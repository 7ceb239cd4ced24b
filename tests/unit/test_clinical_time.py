"""Clinical time: documented after the fact is fine, backwards or in the future is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pathway import usecases
from pathway.errors import InvalidRequest
from tests.support.pathway_runs import PRESENTATION, START, WORKUP_DONE, Run


def test_an_observation_documented_later_keeps_its_clinical_time() -> None:
    run = Run.open({"age": 70})
    applied = usecases.observe(
        run.uow, run.registry, run.episode_id, PRESENTATION,
        at=START + timedelta(hours=2), now=START + timedelta(days=2), actor="a",
    )  # fmt: skip
    assert applied.decision is not None
    assert applied.decision.observation.at == START + timedelta(hours=2)
    assert run.episode.facts["pain_score"].at == START + timedelta(hours=2)


def test_clinical_time_before_the_current_state_began_is_refused_and_changes_nothing() -> None:
    run = Run.open({"age": 70})
    run.observe(PRESENTATION, day=2)
    before = run.snapshot()
    with pytest.raises(InvalidRequest, match="at: got .* expected a time at or after"):
        usecases.observe(
            run.uow, run.registry, run.episode_id, WORKUP_DONE,
            at=START + timedelta(days=1), now=START + timedelta(days=3), actor="a",
        )  # fmt: skip
    assert run.snapshot() == before


def test_clinical_time_in_the_future_is_refused() -> None:
    run = Run.open({"age": 70})
    with pytest.raises(InvalidRequest, match="expected a time not after now"):
        usecases.observe(
            run.uow, run.registry, run.episode_id, PRESENTATION,
            at=START + timedelta(days=1), now=START, actor="a",
        )  # fmt: skip
