"""The compiled counter (pathway/measure_count.py) says what ``evaluate`` says.

The report counts with ``counter``; the episode lists and every hand-built cohort test go
through ``evaluate``. Here both read the same generated cohort (the bench's and the demo's
scenarios of both pathways, replayed through the use cases in memory) at several as-of times,
including ones that leave windows open, and must agree on every measure of every episode.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson
import pytest

from carepath.replay.cohort import fls_scenario, scenario
from carepath.replay.runner import replay
from carepath.replay.scenario import parse_scenario
from pathway.measure_count import counter
from pathway.measure_eval import evaluate, review_states
from pathway.measures import timers_named
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
from tests.support.measure_cohort import FLS, L1L2, REGISTRY, definition_of, memory_courses

AS_OFS = [
    datetime(2026, 2, 1, tzinfo=UTC),
    datetime(2026, 6, 30, 23, 59, tzinfo=UTC),
    datetime(2027, 12, 31, 23, 59, tzinfo=UTC),
]


@pytest.fixture(scope="module")
def cohort() -> InMemoryUnitOfWork:
    store = InMemoryStore()
    rng = random.Random(11)
    raws = [scenario(i, rng) for i in range(120)] + [fls_scenario(i, rng) for i in range(120)]
    for i, raw in enumerate(raws):
        raw["patient"] = {**raw["patient"]}
        replay(
            parse_scenario(orjson.dumps(raw), f"c{i}"), REGISTRY, lambda: InMemoryUnitOfWork(store)
        )
    return InMemoryUnitOfWork(store)


@pytest.mark.parametrize("pathway", [L1L2, FLS])
@pytest.mark.parametrize("as_of", AS_OFS, ids=lambda t: t.date().isoformat())
def test_counter_equals_evaluate(cohort: InMemoryUnitOfWork, pathway: str, as_of: datetime) -> None:
    definition = definition_of(pathway)
    count, review = counter(definition), review_states(definition)
    seen = counted = met = 0
    pairs = zip(  # two readings of each episode: no cache of one serves the other
        memory_courses(cohort, definition, as_of),
        memory_courses(cohort, definition, as_of),
        strict=True,
    )
    for course, again in pairs:
        seen += 1
        fast = count(course)
        slow = [evaluate(m, again, definition, review)[:3] for m in definition.measures]
        assert fast == slow, course.history.episode_id
        counted += sum(c for _, c, _ in fast)
        met += sum(m for _, _, m in fast)
    # the cohort exercises both outcomes, so agreement is not agreement on nothing
    assert seen > 50
    if as_of == AS_OFS[-1]:
        assert 0 < met < counted


def test_the_timers_measures_read_are_kept_in_the_histories() -> None:
    # storage leaves out inert timer entries except these: a timer_fired condition's and a
    # window opening at a timer's (L1-L2's follow-up measures); FLS reads no timer
    assert timers_named(definition_of(L1L2).measures) == {"FU-3MONTH", "FU-REIMAGE"}
    assert timers_named(definition_of(FLS).measures) == frozenset()
