"""Every endpoint × every caller: no token, an unknown or revoked token → 401; a token of a role
the endpoint does not admit → 403; a token of a role it admits → success."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.api_world import WORKUP, ApiWorld

READ = ("coordinator", "auditor", "admin")
WRITE = ("coordinator",)
ASSIGN = ("coordinator", "admin")
AUDIT = ("auditor", "admin")
ADMIN = ("admin",)
CALLERS = ("coordinator", "auditor", "admin", "scheduler", "none", "unknown", "revoked")


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    roles: tuple[str, ...]
    success: int = 200
    body: dict[str, Any] | None = None


ENDPOINTS = [
    Endpoint("worklist", "GET", "/api/episodes?overdue=false", READ),
    Endpoint("episode", "GET", "/api/episodes/{episode}", READ),
    Endpoint("episode-diagram", "GET", "/api/episodes/{episode}/diagram", READ),
    Endpoint(
        "open", "POST", "/api/episodes", WRITE, 201, {"patient_ref": "MRN-9", "facts": {"age": 70}}
    ),
    Endpoint(
        "observe",
        "POST",
        "/api/episodes/{episode}/observations",
        WRITE,
        201,
        {"facts": {"pain_score": 5}},
    ),  # fmt: skip
    Endpoint(
        "request",
        "POST",
        "/api/episodes/{episode}/requests",
        WRITE,
        201,
        {"action": "vertebroplasty"},
    ),  # fmt: skip
    Endpoint("close", "POST", "/api/episodes/{episode}/close", WRITE, 201, {"reason": "declined"}),
    Endpoint(
        "task",
        "POST",
        "/api/episodes/{episode}/tasks/{task}",
        WRITE,
        201,
        {"status": "done", "note": "booked"},
    ),  # fmt: skip
    Endpoint(
        "assign", "POST", "/api/episodes/{episode}/assignment", ASSIGN, 201, {"owner": "alice"}
    ),
    Endpoint("history", "GET", "/api/episodes/{episode}/history", READ),
    Endpoint("explain", "GET", "/api/episodes/{episode}/explain", READ),
    Endpoint("verify", "GET", "/api/audit/verify", AUDIT),
    Endpoint("export-jsonl", "GET", "/api/audit/export?format=jsonl", AUDIT),
    Endpoint("export-fhir", "GET", "/api/audit/export?format=fhir&episode={episode}", AUDIT),
    Endpoint("definitions", "GET", "/api/definitions", READ),
    Endpoint("definition", "GET", "/api/definitions/{version}", READ),
    Endpoint("definition-diagram", "GET", "/api/definitions/{version}/diagram", READ),
    Endpoint("me", "GET", "/api/me", READ),
    Endpoint("tokens", "GET", "/api/tokens", ADMIN),
    Endpoint("token-create", "POST", "/api/tokens", ADMIN, 201, {"name": "n", "role": "auditor"}),
    Endpoint("token-revoke", "DELETE", "/api/tokens/{token}", ADMIN),
    Endpoint("measures", "GET", "/api/measures", AUDIT),
    Endpoint("webhooks", "GET", "/api/webhooks", ADMIN),
    Endpoint(
        "webhook-add",
        "POST",
        "/api/webhooks",
        ADMIN,
        201,
        {"url": "https://hooks.example.org/in", "events": ["escalation.opened"]},
    ),  # fmt: skip
    Endpoint("webhook-remove", "DELETE", "/api/webhooks/{webhook}", ADMIN),
    Endpoint("webhook-rotate", "POST", "/api/webhooks/{webhook}/rotate-secret", ADMIN),
    Endpoint("webhook-outbox", "GET", "/api/webhooks/outbox", ADMIN),
    Endpoint("appointment", "GET", "/api/episodes/{episode}/appointment", READ),
    Endpoint(
        "book",
        "POST",
        "/api/episodes/{episode}/appointment",
        WRITE,
        201,
        {"action": "book", "window": "FU-REASSESS", "on": "2026-04-06"},
    ),  # care day 35 of an episode in care from T0: inside the first review's window
    Endpoint(
        "measure-episodes",
        "GET",
        "/api/measures/{pathway}/{measure_id}/episodes?failing=true",
        AUDIT,
    ),  # fmt: skip
]


def _expected(endpoint: Endpoint, caller: str) -> int:
    if caller in ("none", "unknown", "revoked"):
        return 401
    return endpoint.success if caller in endpoint.roles else 403


CASES = [
    pytest.param(e, c, _expected(e, c), id=f"{e.name}-{c}-{_expected(e, c)}")
    for e, c in itertools.product(ENDPOINTS, CALLERS)
]


def _headers(api: ApiWorld, caller: str) -> dict[str, str]:
    if caller == "none":
        return {}
    if caller == "unknown":
        return {"Authorization": "Bearer cpt_" + "A" * 43}
    return api.headers(caller)


def _path(api: ApiWorld, endpoint: Endpoint) -> str:
    values: dict[str, str] = {}
    if "{episode}" in endpoint.path:
        values["episode"] = api.open_episode()
        if endpoint.name == "book":  # into conservative care at T0: its review windows ahead
            facts = {"facts": WORKUP}
            api.call("POST", f"/api/episodes/{values['episode']}/observations", json=facts)
        if "{task}" in endpoint.path:
            values["task"] = api.episode(values["episode"])["tasks"][0]["key"]
    if "{version}" in endpoint.path:
        values["version"] = api.app.state.definitions.current.version
    if "{measure_id}" in endpoint.path:
        values |= {"pathway": "fracture-liaison", "measure_id": "FLS-KPI-DXA-12W"}
    if "{token}" in endpoint.path:
        values["token"] = api.app.state.tokens.create("to-revoke", "auditor", api.clock())[0].id
    if "{webhook}" in endpoint.path:
        values["webhook"] = _webhook(api)
    return endpoint.path.format(**values)


def _webhook(api: ApiWorld) -> str:
    from carepath import webhooks
    from storage.webhooks import WebhookStore

    factory = api.app.state.uow_factory
    sub, _ = webhooks.add(
        WebhookStore(factory), factory.audit_key, "https://hooks.example.org/x",
        "episode.ended", "test", api.clock(),
    )  # fmt: skip
    return sub.id


@pytest.mark.parametrize(("endpoint", "caller", "status"), CASES)
def test_each_endpoint_admits_exactly_its_roles(
    api: ApiWorld, endpoint: Endpoint, caller: str, status: int
) -> None:
    response = api.client.request(
        endpoint.method, _path(api, endpoint), headers=_headers(api, caller), json=endpoint.body
    )
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("caller", ["none", "scheduler"])
def test_authentication_and_role_are_checked_before_the_body_or_the_episode(
    api: ApiWorld, caller: str
) -> None:
    """A caller without access learns nothing: not whether the episode exists, nor the schema."""
    headers = _headers(api, caller) | {"Content-Type": "application/json"}
    response = api.client.post(
        "/api/episodes/no-such-episode/observations", content=b"{not json", headers=headers
    )
    assert response.status_code == (401 if caller == "none" else 403)


def _openapi_path(path: str) -> str:
    for ours, published in (
        ("episode", "episode_id"), ("task", "task_key"), ("token", "token_id"),
        ("webhook", "subscription_id"),
    ):  # fmt: skip
        path = path.replace(f"{{{ours}}}", f"{{{published}}}")
    return path.split("?")[0]


def test_the_table_covers_every_endpoint_with_the_roles_the_schema_publishes(
    api: ApiWorld,
) -> None:
    schema = api.client.get("/openapi.json").json()
    published = {
        (method.upper(), path): op["x-roles"]
        for path, ops in schema["paths"].items()
        for method, op in ops.items()
    }
    table = {(e.method, _openapi_path(e.path)): list(e.roles) for e in ENDPOINTS}
    assert table == published
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert api.client.get("/api/docs").status_code == 200  # the schema and its docs are public
