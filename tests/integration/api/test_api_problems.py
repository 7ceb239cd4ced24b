"""Every error is an RFC 9457 problem document naming what was wrong; bad input writes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_world import ApiWorld

PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance"}


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) >= PROBLEM_MEMBERS
    assert body["status"] == status and body["type"].startswith("urn:carepath:problem:")
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


def test_an_invalid_fact_value_names_the_fact_the_value_and_what_was_expected(
    api: ApiWorld,
) -> None:
    episode_id = api.open_episode()
    before = api.episode(episode_id)["version"]
    response = api.call(
        "POST", f"/api/episodes/{episode_id}/observations", json={"facts": {"pain_score": 11}}
    )
    body = _problem(response, 422)
    assert body["type"].endswith("invalid-observation")
    assert (body["field"], body["value"]) == ("facts.pain_score", 11)
    assert body["expected"] == "a whole number from 0 to 10"
    assert api.episode(episode_id)["version"] == before


def test_an_unknown_fact_is_named(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    response = api.call(
        "POST", f"/api/episodes/{episode_id}/observations", json={"facts": {"pian": 3}}
    )
    body = _problem(response, 422)
    assert (body["field"], body["value"]) == ("facts.pian", 3)
    assert "unknown fact" in body["expected"]


@pytest.mark.parametrize(
    ("path", "body", "field", "value"),
    [
        ("requests", {"action": "laminectomy"}, "action", "laminectomy"),
        ("close", {"reason": "bored"}, "reason", "bored"),
        ("tasks/NOPE@1", {"status": "done"}, "task", "NOPE@1"),
        ("observations", {"facts": {"pain_score": 3}, "at": "2099-01-01T00:00:00Z"}, "at", None),
    ],
)
def test_a_refused_command_value_names_its_field(
    api: ApiWorld, path: str, body: dict[str, Any], field: str, value: Any
) -> None:
    episode_id = api.open_episode()
    problem = _problem(api.call("POST", f"/api/episodes/{episode_id}/{path}", json=body), 422)
    assert problem["type"].endswith("invalid-request")
    assert problem["field"] == field and problem["expected"]
    if value is not None:
        assert problem["value"] == value


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("POST", "/api/episodes", {"json": {"facts": {}}}, "patient_ref"),
        ("POST", "/api/episodes", {"json": {"patient_ref": "M", "fact": {}}}, "fact"),
        ("POST", "/api/episodes", {"json": {"patient_ref": "M\x00"}}, "patient_ref"),
        ("GET", "/api/episodes?limit=0", {}, "limit"),
        ("GET", "/api/episodes?state=nowhere", {}, "state"),
        ("GET", "/api/episodes?cursor=bm90IGEgY3Vyc29y", {}, "cursor"),
        ("GET", "/api/episodes?due_before=yesterday", {}, "due_before"),
        ("POST", "/api/episodes", {"content": b"{not json"}, "body"),
    ],
)
def test_request_validation_errors_are_problems_naming_the_field(
    api: ApiWorld, method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    headers = {"Content-Type": "application/json"} if "content" in kwargs else {}
    body = _problem(api.call(method, path, headers=headers, **kwargs), 422)
    assert body["field"] == field or body["field"].startswith(field), body
    assert body["expected"]


def test_an_unknown_episode_is_404(api: ApiWorld) -> None:
    body = _problem(api.call("GET", "/api/episodes/nope"), 404)
    assert body["type"].endswith("episode-not-found")
    _problem(api.call("POST", "/api/episodes/nope/close", json={"reason": "declined"}), 404)
    _problem(api.call("GET", "/api/episodes/nope/history", "auditor"), 404)


def test_a_write_on_a_closed_episode_is_409(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    api.call("POST", f"/api/episodes/{episode_id}/close", json={"reason": "declined"})
    response = api.call(
        "POST", f"/api/episodes/{episode_id}/observations", json={"facts": {"pain_score": 2}}
    )
    assert _problem(response, 409)["type"].endswith("episode-closed")


def test_unknown_definitions_tokens_and_routes_are_404(api: ApiWorld) -> None:
    _problem(api.call("GET", "/api/definitions/nope@1"), 404)
    _problem(api.call("DELETE", "/api/tokens/abc123", "admin"), 404)
    _problem(api.call("GET", "/api/nowhere"), 404)
    _problem(api.call("PUT", "/api/episodes"), 405)


def test_a_taken_token_name_is_409(api: ApiWorld) -> None:
    response = api.call("POST", "/api/tokens", "admin", json={"name": "admin-1", "role": "admin"})
    assert _problem(response, 409)["field"] == "name"


def test_an_oversized_body_is_413(api: ApiWorld) -> None:
    response = api.call(
        "POST", "/api/episodes", json={"patient_ref": "M", "label": "x" * (2 << 20)}
    )
    _problem(response, 413)


def test_an_unexpected_failure_is_a_500_problem_without_its_message(
    api: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    patient_ref = "MRN-" + "77"

    def broken() -> Any:
        raise RuntimeError(f"a driver's message quoting {patient_ref}")

    api.app.state.uow_factory = broken
    body = _problem(api.call("GET", "/api/episodes/x"), 500)
    assert "MRN-77" not in str(body)
    assert "RuntimeError" in caplog.text and "MRN-77" not in caplog.text
