"""One coordinator's day through the API, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from tests.support.api_world import WORKUP, ApiWorld


def test_a_course_of_care_through_the_api(api_on: ApiWorld) -> None:
    api = api_on
    episode_id = api.open_episode(patient_ref="MRN-7")
    episode = api.episode(episode_id)
    headers = {"If-Match": episode["etag"], "Idempotency-Key": "workup-read"}
    path = f"/api/episodes/{episode_id}/observations"
    done = api.call("POST", path, json={"facts": WORKUP}, headers=headers)
    assert done.status_code == 201, done.text
    assert done.json()["outcome"]["state"] == "conservative_care"
    replay = api.call("POST", path, json={"facts": WORKUP}, headers=headers)
    assert replay.status_code == 200 and replay.json()["outcome"]["repeated"]
    stale = api.call("POST", path, json={"facts": {"pain_score": 2}}, headers=headers | {
        "Idempotency-Key": "another"})  # fmt: skip
    assert stale.status_code == 412
    task = api.episode(episode_id)["tasks"][0]["key"]
    marked = api.call(
        "POST", f"/api/episodes/{episode_id}/tasks/{task}", json={"status": "not_done"}
    )
    assert marked.status_code == 201, marked.text
    closed = api.call("POST", f"/api/episodes/{episode_id}/close", json={"reason": "deceased"})
    assert closed.json()["outcome"]["state"] == "closed"
    l1 = "/api/episodes?pathway=l1-l2-compression-fracture"  # its FLS episode stays open
    assert api.call("GET", l1).json()["items"] == []
    assert api.call("GET", "/api/audit/verify", "auditor").json()["intact"]
    bundle = api.call("GET", f"/api/audit/export?format=fhir&episode={episode_id}", "auditor")
    assert Bundle.model_validate(bundle.json()).entry[0].resource.status == "revoked"
    assert {e["actor"] for e in api.history(episode_id)} == {"token:coordinator-1"}
