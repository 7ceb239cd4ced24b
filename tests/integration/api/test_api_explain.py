"""``GET /api/episodes/{id}/explain``: the same JSON as the CLI, on both pathways, 404 for an
unknown episode, 422 for a bad time."""

from __future__ import annotations

from pathway.explain import explain_stored
from tests.support.api_world import ApiWorld


def test_workup_waits_for_the_neuro_exam_and_imaging(api: ApiWorld) -> None:
    episode = api.open_episode()
    response = api.call("GET", f"/api/episodes/{episode}/explain", "auditor")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["episode", "pathway", "state", "candidates", "timers"]
    assert body["state"] == "workup" and body["pathway"] == "l1-l2-compression-fracture"
    wu = next(c for c in body["candidates"] if c["rule"] == "WU-COMPLETE")
    assert wu["holds"] is False
    assert wu["missing"] == ["mri_done", "ct_done", "neuro_exam_done"]
    assert [c["rule"] for c in body["candidates"]][:4] == [
        "TX-NEURO", "TX-INSTAB", "TX-MALIG", "TX-MULTI"
    ]  # fmt: skip


def test_the_api_says_what_the_pure_explain_says(api: ApiWorld) -> None:
    episode = api.open_episode()
    body = api.call("GET", f"/api/episodes/{episode}/explain?at=2026-03-03T09:00:00").json()
    services = api.app.state
    direct = explain_stored(
        services.uow_factory(), services.definitions, episode, api.clock.now.replace(day=3)
    ).to_dict()
    assert body == direct


def test_an_fls_episode_is_explained_too(api: ApiWorld) -> None:
    opened = api.call(
        "POST",
        "/api/episodes",
        json={
            "pathway": "fracture-liaison",
            "patient_ref": "MRN-F",
            "facts": {"age": 70, "sex": "female"},
        },
    )
    assert opened.status_code == 201, opened.text
    episode = opened.json()["outcome"]["episode_id"]
    body = api.call("GET", f"/api/episodes/{episode}/explain").json()
    assert body["state"] == "identified" and body["pathway"] == "fracture-liaison"
    eligible = next(c for c in body["candidates"] if c["rule"] == "FLS-ELIGIBLE")
    assert eligible == {
        "rule": "FLS-ELIGIBLE",
        "to": "assessment",
        "holds": False,
        "failing": [
            {"fact": "fracture_date", "observed": None, "needs": {"op": "known", "value": None}}
        ],
        "missing": ["fracture_date"],
    }


def test_an_unknown_episode_is_404(api: ApiWorld) -> None:
    response = api.call("GET", "/api/episodes/no-such-episode/explain")
    assert response.status_code == 404
    assert "no-such-episode" in response.text


def test_a_bad_time_is_422_naming_it(api: ApiWorld) -> None:
    episode = api.open_episode()
    response = api.call("GET", f"/api/episodes/{episode}/explain?at=soon")
    assert response.status_code == 422
    assert "at" in response.text


def test_explain_reads_the_same_on_each_database(api_on: ApiWorld) -> None:
    episode = api_on.open_episode()
    body = api_on.call("GET", f"/api/episodes/{episode}/explain", "admin").json()
    assert body["state"] == "workup"
    assert [t["rule"] for t in body["timers"]] == ["FU-WORKUP-OVERDUE"]
    assert next(c for c in body["candidates"] if c["rule"] == "WU-COMPLETE")["missing"] == [
        "mri_done", "ct_done", "neuro_exam_done"
    ]  # fmt: skip
