"""The database's streaming pass gives the numbers of the full histories on a generated cohort.

The hand-built cohort of ``test_measures_sql.py`` has every kind of entry once; this one is the
bench's and demo's generated scenarios of both pathways (timers firing with and without a move,
follow-ups, closures), replayed through the use cases into the database and into memory. The
database's reports (``storage.measures``: payloads cut in SQL, inert timer entries left out,
the compiled counter) must equal those built from the in-memory payloads in full.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from carepath.bootstrap import Wiring, current_definitions, wire
from carepath.measures import pathway_reports, report_of
from carepath.replay.cohort import fls_scenario, scenario
from carepath.replay.runner import replay
from carepath.replay.scenario import parse_scenario
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork
from storage.unit_of_work import uow_factory
from tests.support.measure_cohort import FLS, L1L2, REGISTRY, definition_of, memory_courses

AS_OFS = [datetime(2026, 5, 31, 23, 59, tzinfo=UTC), datetime(2027, 12, 31, 23, 59, tzinfo=UTC)]


def _raws() -> list[dict[str, Any]]:
    rng = random.Random(23)
    raws = [scenario(i, rng) for i in range(60)] + [fls_scenario(i, rng) for i in range(60)]
    for raw in raws:
        raw["patient"] = {**raw["patient"]}
    return raws


def _fill(make: Any) -> None:
    for i, raw in enumerate(_raws()):
        replay(parse_scenario(orjson.dumps(raw), f"g{i}"), REGISTRY, make)


@pytest.fixture
def wiring(database_url: str) -> Iterator[Wiring]:
    factory = uow_factory(database_url)
    _fill(factory)
    yield wire(current=current_definitions(), factory=factory)
    factory.dispose()


def test_generated_cohort_same_numbers_from_the_database(wiring: Wiring) -> None:
    store = InMemoryStore()
    _fill(lambda: InMemoryUnitOfWork(store))
    uow = InMemoryUnitOfWork(store)
    for as_of in AS_OFS:
        got = pathway_reports(wiring, pathway=None, month_from=None, month_to=None, as_of=as_of)
        want = [
            report_of(d, memory_courses(uow, d, as_of), None, None, as_of)
            for d in (definition_of(FLS), definition_of(L1L2))
        ]
        assert got == want, as_of
    assert sum(m["denominator"] for r in got for m in r["measures"]) > 100
