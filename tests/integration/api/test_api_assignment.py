"""``POST /api/episodes/{id}/assignment`` and ``GET /api/episodes?assigned=me|NAME|none``: an
episode's owner set, changed and cleared through the command route (If-Match, Idempotency-Key,
audited), shown on the episode and the worklist, and filtered on, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_world import ApiWorld


def _assign(
    api: ApiWorld, episode_id: str, owner: Any, role: str = "coordinator", **kw: Any
) -> Any:
    return api.call(
        "POST", f"/api/episodes/{episode_id}/assignment", role, json={"owner": owner}, **kw
    )


def test_assign_reassign_and_unassign_each_audited_and_shown(api: ApiWorld) -> None:
    ep = api.open_episode()
    before = api.episode(ep)
    assert before["owner"] is None
    mine = _assign(api, ep, "me")
    assert mine.status_code == 201, mine.text
    assert mine.json()["outcome"]["kind"] == "assign"
    assert mine.json()["outcome"]["transitions"] == [] and mine.json()["fired"] == []
    assert api.episode(ep)["owner"] == "coordinator-1"  # "me": the calling token's name
    assert _assign(api, ep, "bob", "admin").status_code == 201  # admins may assign too
    assert api.episode(ep)["owner"] == "bob"
    assert _assign(api, ep, None).status_code == 201
    after = api.episode(ep)
    assert after["owner"] is None
    assert after["state"] == before["state"] and after["timers"] == before["timers"]
    assert after["version"] == before["version"] + 3
    assigns = [e for e in api.history(ep) if e["kind"] == "assign"]
    assert [(e["owner"], e["actor"]) for e in assigns] == [
        ("coordinator-1", "token:coordinator-1"),
        ("bob", "token:admin-1"),
        (None, "token:coordinator-1"),
    ]
    assert all(e["state_from"] == e["state_to"] == before["state"] for e in assigns)


def test_an_auditor_may_not_assign(api: ApiWorld) -> None:
    ep = api.open_episode()
    assert _assign(api, ep, "alice", "auditor").status_code == 403
    assert api.episode(ep)["owner"] is None


def test_if_match_and_idempotency_key_work_as_on_every_command(api: ApiWorld) -> None:
    ep = api.open_episode()
    tag = api.call("GET", f"/api/episodes/{ep}").headers["ETag"]
    ok = _assign(api, ep, "alice", headers={"If-Match": tag, "Idempotency-Key": "as-1"})
    assert ok.status_code == 201, ok.text
    stale = _assign(api, ep, "bob", headers={"If-Match": tag})
    assert stale.status_code == 412 and api.episode(ep)["owner"] == "alice"
    again = _assign(api, ep, "alice", headers={"If-Match": tag, "Idempotency-Key": "as-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    other = _assign(api, ep, "bob", headers={"Idempotency-Key": "as-1"})
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    assert "body" in other.json()["detail"]
    assert api.episode(ep)["owner"] == "alice"
    assert len([e for e in api.history(ep) if e["kind"] == "assign"]) == 1


@pytest.mark.parametrize(
    "owner", ["token:x", "TOKEN:admin", "none", "", " alice", "a\x00b", "x" * 201]
)
def test_a_bad_owner_is_a_422_naming_the_field_and_nothing_changes(
    api: ApiWorld, owner: str
) -> None:
    ep = api.open_episode()
    version = api.episode(ep)["version"]
    response = _assign(api, ep, owner)
    assert response.status_code == 422, response.text
    assert "owner" in response.text
    assert api.episode(ep)["version"] == version


def test_the_owner_member_is_required_and_unknown_members_are_refused(api: ApiWorld) -> None:
    ep = api.open_episode()
    path = f"/api/episodes/{ep}/assignment"
    assert api.call("POST", path, json={}).status_code == 422
    assert api.call("POST", path, json={"owner": "a", "to": "b"}).status_code == 422


def test_an_ended_episode_is_not_assigned(api: ApiWorld) -> None:
    ep = api.open_episode()
    assert (
        api.call("POST", f"/api/episodes/{ep}/close", json={"reason": "declined"}).status_code
        == 201
    )
    response = _assign(api, ep, "alice")
    assert response.status_code == 409 and response.json()["type"].endswith("episode-closed")
    assert api.episode(ep)["owner"] is None


def test_the_worklist_shows_the_owner_and_filters_on_it(api_on: ApiWorld) -> None:
    api = api_on
    a, b, c = (api.open_episode(f"MRN-{n}") for n in "ABC")
    assert _assign(api, a, "alice").status_code == 201
    assert _assign(api, b, "me").status_code == 201  # coordinator-1

    def listed(query: str, role: str = "coordinator") -> dict[str, Any]:
        response = api.call(
            "GET", f"/api/episodes?pathway=l1-l2-compression-fracture&{query}", role
        )
        assert response.status_code == 200, response.text
        return {item["id"]: item["owner"] for item in response.json()["items"]}

    assert listed("") == {a: "alice", b: "coordinator-1", c: None}
    assert listed("assigned=me") == {b: "coordinator-1"}
    assert listed("assigned=alice") == {a: "alice"}
    assert listed("assigned=none") == {c: None}
    assert listed("assigned=nobody-here") == {}
    assert listed("assigned=me", "admin") == {}  # admin-1 owns nothing
    assert listed("assigned=none&overdue=true") == {}
    assert _assign(api, b, None).status_code == 201
    assert listed("assigned=none") == {b: None, c: None}


@pytest.mark.parametrize("value", ["token:x", "", "a\x01"])
def test_a_bad_assigned_filter_is_a_422(api: ApiWorld, value: str) -> None:
    response = api.call("GET", "/api/episodes", params={"assigned": value})
    assert response.status_code == 422, response.text
    assert "assigned" in response.text
