"""The episode page's "What it is waiting for" panel: said for a coordinator, on both pathways,
and listing exactly what ``GET /api/episodes/{id}/explain`` lists, in its order."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.support.web_html import episode_of
from tests.support.web_site import Site


def _api(site: Site) -> TestClient:
    return TestClient(site.app, headers={"Authorization": f"Bearer {site.tokens['coordinator']}"})


def _panel(html: str) -> str:
    start = html.index('<section id="waiting"')
    return html[start : html.index("</section>", start)]


def test_workup_waiting_for_the_neuro_exam_says_so(site: Site) -> None:
    api = _api(site)
    body = {"patient_ref": "MRN-W", "facts": {"age": 70, "sex": "female"}}
    episode = api.post("/api/episodes", json=body).json()["outcome"]["episode_id"]
    facts = {"fracture_levels": ["L1"], "pain_score": 6, "mri_done": True}
    seen = api.post(f"/api/episodes/{episode}/observations", json={"facts": facts})
    assert seen.status_code == 201, seen.text
    panel = _panel(site.client().get(f"/episodes/{episode}").text)
    assert "What it is waiting for" in panel
    assert "As things stand, an observation moves nothing." in panel
    assert "WU-COMPLETE → Conservative care</strong>: needs" in panel
    assert "<li>Neurological exam done (unknown)</li>" in panel
    assert "Immediate-transfer checks, checked first: none holds" in panel
    assert "FU-WORKUP-OVERDUE" in panel


def _rules(panel: str) -> list[str]:
    return re.findall(r'data-rule="([^"]+)"', panel)


def _expected(explained: dict[str, Any]) -> list[str]:
    cands = explained["candidates"]
    routes = [c["rule"] for c in cands if not c["rule"].startswith("TX-")]
    transfers = [c["rule"] for c in cands if c["rule"].startswith("TX-")]
    return routes + transfers + [t["rule"] for t in explained["timers"]]


def test_the_panel_lists_what_the_api_explains_on_both_pathways(site: Site) -> None:
    api, client = _api(site), site.client()
    for ref in ("DEMO-0009", "DEMO-0010", "DEMO-0013", "DEMO-F001", "DEMO-F008", "DEMO-F011"):
        episode = episode_of(ref)
        explained = api.get(f"/api/episodes/{episode}/explain").json()
        html = client.get(f"/episodes/{episode}").text
        panel = _panel(html)
        if not explained["candidates"] and not explained["timers"]:
            assert "Nothing: the episode has ended." in panel, ref
            continue
        assert _rules(panel) == _expected(explained), ref
        holding = next((c for c in explained["candidates"] if c["holds"]), None)
        assert f'data-next="{holding["rule"] if holding else ""}"' in panel, ref


def test_an_ended_episode_waits_for_nothing(site: Site) -> None:
    api = _api(site)
    body = {"patient_ref": "MRN-E", "facts": {"age": 70}}
    episode = api.post("/api/episodes", json=body).json()["outcome"]["episode_id"]
    api.post(f"/api/episodes/{episode}/close", json={"reason": "declined"})
    panel = _panel(site.client().get(f"/episodes/{episode}").text)
    assert "Nothing: the episode has ended." in panel and "data-rule" not in panel
