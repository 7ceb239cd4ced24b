"""Schemathesis against the published OpenAPI schema, in-process: no input makes the API fail
(no 5xx), and every response (status, content type, headers, body) is what the schema says.

Each operation is called with a token of a role it admits (a coordinator's wherever it can), so
success responses are checked too; half the generated episode ids are replaced by ids of real
episodes of both shipped pathways (L1–L2 and fracture liaison), so that generated commands
reach each pathway and not only the 404. The schema lists each pathway's facts, actions and
close reasons, so generated bodies are mostly ones a pathway can take.

The examples are bounded (``MAX_EXAMPLES`` an operation, ``CAREPATH_SCHEMATHESIS_EXAMPLES`` to
raise it for a longer run) so that the suite stays fast; ``CASES`` counts what ran.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carepath.api.app import create_api
from tests.support.api_world import ApiWorld

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def published_schema() -> Any:
    """The OpenAPI schema the app publishes, read at collection (schemathesis parametrises from
    a schema it holds then; its lazy fixture-based loader does not run under pytest 9) off an
    app on an in-memory database, thrown away: no episode, no file, nothing left running. The
    calls go to the ``world`` fixture's app."""
    app = create_api(database_url="sqlite://")
    try:
        return schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        app.state.uow_factory.dispose()


schema = published_schema()
MAX_EXAMPLES = int(os.environ.get("CAREPATH_SCHEMATHESIS_EXAMPLES", "40"))
CASES: list[str] = []  # one entry per case run: its operation


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiWorld, list[str]]]:
    """The app started on a fresh SQLite file, with three real episodes; the schema's calls go
    to it."""
    world = ApiWorld.start(f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'api.db'}")
    episodes = [world.open_episode(patient_ref=f"MRN-{i}") for i in range(3)]
    for i in range(3):
        opened = world.call(
            "POST",
            "/api/episodes",
            json={"patient_ref": f"FLS-{i}", "pathway": "fracture-liaison",
                  "facts": {"age": 70 + i, "sex": "female"}},
        )  # fmt: skip
        assert opened.status_code == 201, opened.text
        episodes.append(opened.json()["outcome"]["episode_id"])
    yield world, episodes
    print(f"\nschemathesis: {len(CASES)} cases over {len(set(CASES))} operations, 0 failures")
    world.stop()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_api_keeps_to_its_schema(case: Any, world: tuple[ApiWorld, list[str]]) -> None:
    api, episodes = world
    admitted = case.operation.definition.raw.get("x-roles", [])
    role = "coordinator" if "coordinator" in admitted else admitted[0]
    episode_id = (case.path_parameters or {}).get("episode_id")
    if episode_id is not None and len(episode_id) % 2 == 0:
        case.path_parameters["episode_id"] = episodes[len(episode_id) % len(episodes)]
    case.call_and_validate(app=api.app, headers=api.headers(role), checks=CHECKS)
    CASES.append(case.operation.label)
