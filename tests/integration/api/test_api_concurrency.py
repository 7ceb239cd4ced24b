"""Optimistic concurrency over HTTP (ETag / If-Match) and idempotent commands (Idempotency-Key)."""

from __future__ import annotations

from typing import Any

import pytest

from carepath.api.commands import PinnedVersion
from pathway import usecases
from pathway.errors import ConcurrencyConflict
from tests.support.api_world import ApiWorld


def _observe(api: ApiWorld, episode_id: str, pain: int, **headers: str) -> Any:
    return api.call(
        "POST",
        f"/api/episodes/{episode_id}/observations",
        json={"facts": {"pain_score": pain}},
        headers=headers,
    )


def test_episode_responses_carry_the_etag_of_their_version(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    got = api.call("GET", f"/api/episodes/{episode_id}")
    assert got.headers["etag"] == f'"{episode_id}:2"' == got.json()["etag"]
    written = _observe(api, episode_id, 6, **{"If-Match": got.headers["etag"]})
    assert written.status_code == 201
    assert written.headers["etag"] == f'"{episode_id}:3"'


def test_a_stale_if_match_is_412_and_writes_nothing(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    stale = api.call("GET", f"/api/episodes/{episode_id}").headers["etag"]
    assert _observe(api, episode_id, 6).status_code == 201  # someone else wrote meanwhile
    response = _observe(api, episode_id, 2, **{"If-Match": stale})
    assert response.status_code == 412
    assert response.json()["expected"] == f'"{episode_id}:3"' == response.headers["etag"]
    assert api.episode(episode_id)["facts"]["pain_score"]["value"] == 6
    assert len(api.history(episode_id)) == 3


def test_if_match_star_or_a_list_holding_the_current_etag_passes(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    assert _observe(api, episode_id, 5, **{"If-Match": "*"}).status_code == 201
    listed = f'"{episode_id}:1", "{episode_id}:3"'
    assert _observe(api, episode_id, 4, **{"If-Match": listed}).status_code == 201


def test_a_timer_that_fires_before_the_write_makes_the_clients_etag_stale(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    etag = api.call("GET", f"/api/episodes/{episode_id}").headers["etag"]
    api.clock.advance(4)  # the workup-overdue escalation (3 days) is now due
    response = _observe(api, episode_id, 5, **{"If-Match": etag})
    assert response.status_code == 412
    assert any(t["kind"] == "escalation" for t in api.episode(episode_id)["tasks"])


def test_a_write_between_the_if_match_check_and_the_use_case_is_a_409(api: ApiWorld) -> None:
    """PinnedVersion: the use case refuses an episode at another version than If-Match named."""
    episode_id = api.open_episode()
    factory, definitions, now = api.app.state.uow_factory, api.app.state.definitions, api.clock()
    pinned = PinnedVersion(factory(), episode_id, 2)
    usecases.observe(
        factory(), definitions, episode_id, {"pain_score": 3}, at=now, now=now, actor="other"
    )
    with pytest.raises(ConcurrencyConflict):
        usecases.observe(
            pinned, definitions, episode_id, {"pain_score": 4}, at=now, now=now, actor="late"
        )


def test_the_api_answers_a_concurrency_conflict_with_409(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    real_factory = api.app.state.uow_factory
    definitions = api.app.state.definitions

    class Interleaving:  # another writer commits just after the If-Match check
        def __init__(self) -> None:
            self.reads = 0

        def __call__(self) -> Any:
            outer = self

            class Uow(type(real_factory())):  # type: ignore[misc]
                def get_episode(self, eid: str) -> Any:
                    outer.reads += 1
                    if outer.reads == 2:
                        usecases.observe(
                            real_factory(), definitions, eid, {"pain_score": 1},
                            at=api.clock(), now=api.clock(), actor="other",
                        )  # fmt: skip
                    return super().get_episode(eid)

            return Uow(real_factory.engine, real_factory.snapshots, real_factory.connections)

    api.app.state.uow_factory = Interleaving()
    response = _observe(api, episode_id, 9, **{"If-Match": f'"{episode_id}:2"'})
    assert response.status_code == 409, response.text
    assert response.json()["type"].endswith("concurrency-conflict")


def test_the_same_idempotency_key_twice_applies_once(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    first = _observe(api, episode_id, 6, **{"Idempotency-Key": "visit-2026-03-02"})
    again = _observe(api, episode_id, 6, **{"Idempotency-Key": "visit-2026-03-02"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.json()["outcome"] == {**first.json()["outcome"], "repeated": True}
    assert len(api.history(episode_id)) == 3


def test_a_replay_is_answered_even_with_the_now_stale_if_match(api: ApiWorld) -> None:
    episode_id = api.open_episode()
    headers = {"Idempotency-Key": "k-1", "If-Match": f'"{episode_id}:2"'}
    assert _observe(api, episode_id, 6, **headers).status_code == 201
    assert _observe(api, episode_id, 6, **headers).status_code == 200


def test_an_idempotent_open_returns_the_same_episode(api: ApiWorld) -> None:
    body = {"patient_ref": "MRN-5", "facts": {"age": 70}}
    first = api.call("POST", "/api/episodes", json=body, headers={"Idempotency-Key": "o-1"})
    again = api.call("POST", "/api/episodes", json=body, headers={"Idempotency-Key": "o-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["outcome"]["episode_id"] == again.json()["outcome"]["episode_id"]
    assert len(api.call("GET", "/api/episodes").json()["items"]) == 1


@pytest.mark.parametrize("key", ["timer:x:FU-REASSESS@3", "used-for-an-observation"])
def test_a_key_reserved_or_used_for_another_command_is_refused(api: ApiWorld, key: str) -> None:
    episode_id = api.open_episode()
    _observe(api, episode_id, 6, **{"Idempotency-Key": "used-for-an-observation"})
    response = api.call(
        "POST",
        f"/api/episodes/{episode_id}/close",
        json={"reason": "declined"},
        headers={"Idempotency-Key": key},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"
    assert api.episode(episode_id)["state"] == "workup"
