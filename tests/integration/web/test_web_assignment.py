"""The episode page's owner: shown to every reader; the owner form (assign to a name, to me,
unassign) for coordinators and admins only; the worklist's owner column and "assigned" filter."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.web_html import episode_of, hidden, rows
from tests.support.web_site import Site

CONSERVATIVE = "DEMO-0017"


def _section(html: str) -> str:
    match = re.search(r'<section id="assignment".*?</section>', html, re.S)
    assert match, "no owner form on the page"
    return match.group(0)


def _owner_shown(html: str) -> str:
    match = re.search(r'<dd id="owner">(.*?)</dd>', html, re.S)
    assert match
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _assign(client: TestClient, episode_id: str, **fields: str) -> object:
    form = _section(client.get(f"/episodes/{episode_id}").text)
    data = {"csrf": hidden(form, "csrf"), "event_id": hidden(form, "event_id"), **fields}
    return client.post(f"/episodes/{episode_id}/assignment", data=data, follow_redirects=False)


def _owner(site: Site, episode_id: str) -> str | None:
    with site.app.state.uow_factory() as uow:
        return uow.get_episode(episode_id).owner  # type: ignore[no-any-return]


def test_assign_to_a_name_to_me_and_unassign_from_the_page(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    assert _owner_shown(client.get(f"/episodes/{eid}").text) == "unassigned"
    done = _assign(client, eid, owner="alice", choice="name")
    assert done.status_code == 303, done.text  # type: ignore[attr-defined]
    page = client.get(done.headers["location"]).text  # type: ignore[attr-defined]
    assert _owner_shown(page) == "alice" and "Assigned to <strong>alice</strong>" in page
    assert _assign(client, eid, choice="me").status_code == 303  # type: ignore[attr-defined]
    assert _owner(site, eid) == "test-coordinator"
    assert _assign(site.client("admin"), eid, choice="none").status_code == 303  # type: ignore[attr-defined]
    assert _owner(site, eid) is None
    with site.app.state.uow_factory() as uow:
        assigns = [r for r in uow.audit_records(eid) if r.kind == "assign"]
    assert [(r.body()["owner"], r.actor) for r in assigns] == [
        ("alice", "token:test-coordinator"),
        ("test-coordinator", "token:test-coordinator"),
        (None, "token:test-admin"),
    ]
    timeline = client.get(f"/episodes/{eid}").text.split('id="timeline"', 1)[1]
    assert timeline.count("<strong>Owner changed</strong>") == 3
    assert "Assigned to alice" in timeline and "Unassigned" in timeline


def test_a_bad_name_is_shown_on_the_page_and_nothing_is_recorded(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    for name in ("token:alice", "none", ""):
        response = _assign(client, eid, owner=name, choice="name")
        assert response.status_code == 422  # type: ignore[attr-defined]
        assert "Not recorded." in response.text and "owner: got" in response.text  # type: ignore[attr-defined]
    assert _owner(site, eid) is None


def test_an_auditor_sees_the_owner_but_no_form_and_may_not_post(site: Site) -> None:
    eid = episode_of(CONSERVATIVE)
    _assign(site.client(), eid, owner="alice", choice="name")
    auditor = site.client("auditor")
    page = auditor.get(f"/episodes/{eid}").text
    assert _owner_shown(page) == "alice" and 'id="assignment"' not in page
    csrf = hidden(page, "csrf") if 'name="csrf"' in page else ""
    response = auditor.post(
        f"/episodes/{eid}/assignment", data={"csrf": csrf, "choice": "none"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert _owner(site, eid) == "alice"


def test_the_worklist_shows_owners_and_filters_mine_a_name_and_unassigned(site: Site) -> None:
    client = site.client()
    a, b = episode_of(CONSERVATIVE), episode_of("DEMO-0001")
    _assign(client, a, choice="me")
    _assign(client, b, owner="alice", choice="name")
    everyone = {eid for _, eid in rows(client.get("/worklist").text)}
    assert {a, b} <= everyone
    assert {eid for _, eid in rows(client.get("/worklist?assigned=me").text)} == {a}
    assert {eid for _, eid in rows(client.get("/worklist?assigned=alice").text)} == {b}
    unassigned = {eid for _, eid in rows(client.get("/worklist?assigned=none").text)}
    assert unassigned == everyone - {a, b}
    page = client.get("/worklist?assigned=alice").text
    assert '<td class="owner">alice</td>' in page
    assert '<option value="alice" selected>alice</option>' in page
    assert client.get("/worklist?assigned=token:x").status_code == 422
