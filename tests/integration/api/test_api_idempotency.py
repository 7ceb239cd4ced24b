"""Idempotency-Key over HTTP: the token's own, bound to the request, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_world import PROFILE, T0, ApiWorld


@pytest.fixture
def two(api_on: ApiWorld) -> ApiWorld:
    """The app with a second coordinator ("coordinator-b") beside the first."""
    api_on.secrets["coordinator-b"] = api_on.app.state.tokens.create(
        "coordinator-b", "coordinator", T0
    )[1]
    return api_on


def _open(api: ApiWorld, mrn: str, key: str, role: str = "coordinator") -> Any:
    body = {"patient_ref": mrn, "facts": PROFILE}
    return api.call("POST", "/api/episodes", role, json=body, headers={"Idempotency-Key": key})


def _observe(api: ApiWorld, episode_id: str, pain: int, key: str, role: str = "coordinator") -> Any:
    return api.call(
        "POST",
        f"/api/episodes/{episode_id}/observations",
        role,
        json={"facts": {"pain_score": pain}},
        headers={"Idempotency-Key": key},
    )


def _entries(api: ApiWorld, *episode_ids: str) -> int:
    return sum(len(api.history(e)) for e in episode_ids)


def test_another_token_reusing_a_key_gets_its_own_episode_never_the_first(two: ApiWorld) -> None:
    first = _open(two, "MRN-A", "open-1")
    second = _open(two, "MRN-B", "open-1", "coordinator-b")
    assert (first.status_code, second.status_code) == (201, 201)
    a, b = first.json()["outcome"]["episode_id"], second.json()["outcome"]["episode_id"]
    assert a != b and "idempotent-replayed" not in second.headers
    assert two.episode(b)["patient_ref"] == "MRN-B"
    refs = {row["patient_ref"] for row in two.call("GET", "/api/episodes").json()["items"]}
    assert refs == {"MRN-A", "MRN-B"}


def test_the_same_token_key_and_request_replays_the_first_outcome(two: ApiWorld) -> None:
    episode_id = two.open_episode()
    first = _observe(two, episode_id, 6, "v-1")
    again = _observe(two, episode_id, 6, "v-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["outcome"] == {**first.json()["outcome"], "repeated": True}
    assert again.headers["idempotent-replayed"] == "true"
    assert len(two.history(episode_id)) == 3


def test_another_token_observing_with_the_same_key_records_its_own_body(two: ApiWorld) -> None:
    episode_id = two.open_episode()
    assert _observe(two, episode_id, 6, "v-1").status_code == 201
    theirs = _observe(two, episode_id, 3, "v-1", "coordinator-b")
    assert theirs.status_code == 201, theirs.text
    assert two.episode(episode_id)["facts"]["pain_score"]["value"] == 3


@pytest.mark.parametrize("part", ["body", "episode", "command"])
def test_the_same_tokens_key_for_another_request_is_a_422_naming_key_and_part(
    two: ApiWorld, part: str
) -> None:
    episode_id, other = two.open_episode("MRN-1"), two.open_episode("MRN-2")
    assert _observe(two, episode_id, 6, "v-1").status_code == 201
    before = _entries(two, episode_id, other)
    if part == "body":
        response = _observe(two, episode_id, 2, "v-1")
    elif part == "episode":
        response = _observe(two, other, 6, "v-1")
    else:
        response = two.call(
            "POST",
            f"/api/episodes/{episode_id}/close",
            json={"reason": "declined"},
            headers={"Idempotency-Key": "v-1"},
        )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("idempotency-key-reused")
    assert problem["field"] == "Idempotency-Key" and problem["value"] == "v-1"
    assert "'v-1'" in problem["detail"] and part in problem["detail"]
    assert _entries(two, episode_id, other) == before
    assert two.episode(episode_id)["facts"]["pain_score"]["value"] == 6
    assert two.episode(episode_id)["state"] == "workup"


def test_an_open_with_the_same_key_and_another_patient_is_refused(two: ApiWorld) -> None:
    assert _open(two, "MRN-A", "open-1").status_code == 201
    response = _open(two, "MRN-Z", "open-1")
    assert response.status_code == 422 and "body" in response.json()["detail"]
    assert len(two.call("GET", "/api/episodes").json()["items"]) == 1
