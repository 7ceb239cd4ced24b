"""The pages' reads: sign-in and roles, the worklist's order, filters and reasons, the episode."""

from __future__ import annotations

from urllib.parse import unquote

from tests.support.web_html import episode_of, hidden, rows
from tests.support.web_site import Site, sign_in

BUCKET_ORDER = {"overdue": 0, "today": 1, "later": 2}


def test_pages_redirect_to_sign_in_without_a_session(site: Site) -> None:
    response = site.client(None).get("/worklist?state=workup", follow_redirects=False)
    assert response.status_code == 303
    assert unquote(response.headers["location"]) == "/login?next=/worklist?state=workup"


def test_sign_in_returns_to_the_page_asked_for(site: Site) -> None:
    client = site.client(None)
    page = client.get("/login?next=/worklist?state=workup")
    response = client.post(
        "/login",
        data={"token": site.tokens["coordinator"], "nonce": hidden(page.text, "nonce"),
              "next": hidden(page.text, "next")},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    assert response.headers["location"] == "/worklist?state=workup"


def test_session_cookie_is_httponly_and_samesite_strict(site: Site) -> None:
    response = sign_in(site.client(None), site.tokens["coordinator"])
    cookie = response.headers["set-cookie"].lower()  # type: ignore[attr-defined]
    assert "carepath_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_unknown_token_is_refused_at_sign_in(site: Site) -> None:
    client = site.client(None)
    response = sign_in(client, "cpt_not-a-real-token")
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "unknown or has been revoked" in response.text  # type: ignore[attr-defined]
    assert client.get("/worklist", follow_redirects=False).status_code == 303


def test_scheduler_role_cannot_sign_in_to_the_pages(site: Site) -> None:
    response = sign_in(site.client(None), site.tokens["scheduler"])
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert "cannot sign in to the coordinator pages" in response.text  # type: ignore[attr-defined]


def test_sign_in_form_without_its_cookie_is_refused(site: Site) -> None:
    client = site.client(None)
    response = client.post(
        "/login", data={"token": site.tokens["coordinator"], "nonce": "forged"},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 400
    assert client.get("/worklist", follow_redirects=False).status_code == 303


def test_revoking_the_token_ends_its_page_session(site: Site) -> None:
    client = site.client("coordinator")
    assert client.get("/worklist").status_code == 200
    token = next(t for t in site.app.state.tokens.list() if t.name == "test-coordinator")
    site.app.state.tokens.revoke(token.id, site.app.state.clock())
    assert client.get("/worklist", follow_redirects=False).status_code == 303


L1 = "pathway=l1-l2-compression-fracture"  # the demo's fracture-liaison episodes aside


def test_worklist_lists_overdue_then_due_within_24_hours_then_the_rest(site: Site) -> None:
    listed = rows(site.client().get(f"/worklist?{L1}").text)
    buckets = [b for b, _ in listed]
    assert buckets == sorted(buckets, key=BUCKET_ORDER.__getitem__)
    ids = [e for _, e in listed]
    overdue = [episode_of(r) for r in ("DEMO-0009", "DEMO-0008", "DEMO-0002", "DEMO-0004")]
    assert ids[:4] == overdue  # most overdue first
    assert {e for b, e in listed if b == "today"} == {
        episode_of(r) for r in ("DEMO-0011", "DEMO-0006", "DEMO-0001")
    }
    assert episode_of("DEMO-0013") not in ids  # transferred: ended, not on the worklist


def test_worklist_row_says_why_it_is_there(site: Site) -> None:
    html = site.client().get("/worklist").text
    row = html.split(f'data-episode="{episode_of("DEMO-0008")}"', 1)[1].split("</tr>", 1)[0]
    assert "Reassessment overdue by 3 days" in row
    assert "FU-REASSESS-OVERDUE" in row
    assert "1 escalation" in row and "Care day 45" in row and "Reassessment" in row


def test_worklist_filters_by_state(site: Site) -> None:
    client = site.client()
    workup = {e for _, e in rows(client.get("/worklist?state=workup").text)}
    assert workup == {episode_of("DEMO-0003"), episode_of("DEMO-0004")}
    ended = {e for _, e in rows(client.get("/worklist?state=immediate_transfer").text)}
    assert ended == {episode_of("DEMO-0013")}


def test_worklist_searches_patient_ref_and_label_by_prefix(site: Site) -> None:
    client = site.client()
    by_ref = [e for _, e in rows(client.get(f"/worklist?{L1}&q=demo-0017").text)]
    assert by_ref == [episode_of("DEMO-0017")]
    by_label = [e for _, e in rows(client.get(f"/worklist?{L1}&q=June").text)]
    assert by_label == [episode_of("DEMO-0008")]
    assert "Nothing matches this filter" in client.get("/worklist?q=zzz").text


def test_worklist_refresh_by_htmx_returns_only_the_table(site: Site) -> None:
    response = site.client().get("/worklist", headers={"HX-Request": "true"})
    assert response.text.lstrip().startswith('<section id="worklist"')
    assert 'hx-trigger="every 15s"' in response.text
    assert "<html" not in response.text


def test_pages_are_not_cached_and_forbid_framing_and_foreign_scripts(site: Site) -> None:
    response = site.client().get("/worklist")
    assert response.headers["cache-control"] == "no-store"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_episode_page_shows_state_pathway_timeline_and_form(site: Site) -> None:
    html = site.client().get(f"/episodes/{episode_of('DEMO-0010')}").text
    assert "DEMO-0010" in html and "Mabel Nguyen" in html
    current = html.split('<li class="pstate is-current" aria-current="step">', 1)[1]
    assert '<span class="pname">Conservative care</span>' in current.split("</li>", 1)[0]
    assert "Diagram source (mermaid)" in html and "stateDiagram-v2" in html
    assert "class conservative_care s_active" in html
    assert "Vertebroplasty refused" in html and "AUG-NO-VERTEBROPLASTY" in html
    assert "Observation recorded" in html and "IN-PRESENTED" in html  # timeline with rules
    assert 'name="neuro_deficit_motor"' in html and 'name="fracture_levels" multiple' in html


def test_unknown_episode_is_a_not_found_page(site: Site) -> None:
    response = site.client().get("/episodes/nope")
    assert response.status_code == 404
    assert "Episode not found" in response.text


def test_auditor_reads_but_has_no_forms(site: Site) -> None:
    html = site.client("auditor").get(f"/episodes/{episode_of('DEMO-0017')}").text
    assert "read only" in html
    assert 'action="/episodes/' not in html


def test_admin_reads_the_worklist(site: Site) -> None:
    assert site.client("admin").get("/worklist").status_code == 200


def test_the_demo_fls_episodes_are_on_the_api_worklist_and_their_pages_render(site: Site) -> None:
    from fastapi.testclient import TestClient

    api = TestClient(site.app, headers={"Authorization": f"Bearer {site.tokens['coordinator']}"})
    listed = api.get("/api/episodes", params={"pathway": "fracture-liaison", "limit": 500}).json()
    refs = {e["patient_ref"] for e in listed["items"]}
    assert {"DEMO-F001", "DEMO-F008", "DEMO-F011", "DEMO-0014"} <= refs  # 0014: enrolled
    assert {e["pathway"] for e in listed["items"]} == {"fracture-liaison"}
    assert sum(e["escalated"] for e in listed["items"]) >= 5
    client = site.client()
    for ref in [f"DEMO-F{n:03d}" for n in range(1, 16)]:
        page = client.get(f"/episodes/{episode_of(ref)}")
        assert page.status_code == 200 and ref in page.text, ref
