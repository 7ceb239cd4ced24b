"""The episode page's appointment form (book inside a window, outside with a reason, move,
cancel; CSRF as on every form; none for an auditor) and the worklist's booked day, its
"missed appointment" flag and its "booked appointment first" order."""

from __future__ import annotations

import re
from datetime import date, timedelta

from fastapi.testclient import TestClient

from tests.support.web_html import episode_of, hidden, rows
from tests.support.web_site import NOW, Site

CONSERVATIVE = "DEMO-0017"


def _section(html: str) -> str:
    match = re.search(r'<section id="appointment".*?</section>', html, re.S)
    assert match, "no appointment section on the page"
    return match.group(0)


def _first_window(html: str) -> tuple[str, date, date]:
    rule, first, last = re.findall(
        r'<option value="([^"]+)"[^>]*>[^(]+\((\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d)\)', html
    )[0]
    return rule, date.fromisoformat(first), date.fromisoformat(last)


def _post(client: TestClient, eid: str, csrf: str | None = None, **fields: str) -> object:
    form = _section(client.get(f"/episodes/{eid}").text)
    data = {"csrf": hidden(form, "csrf") if csrf is None else csrf,
            "event_id": hidden(form, "event_id"), **fields}  # fmt: skip
    return client.post(f"/episodes/{eid}/appointment", data=data, follow_redirects=False)


def _appointment(site: Site, eid: str) -> object:
    with site.app.state.uow_factory() as uow:
        return uow.get_episode(eid).appointment


def test_book_outside_with_a_reason_move_and_cancel_from_the_page(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    rule, first, last = _first_window(_section(client.get(f"/episodes/{eid}").text))
    refused = _post(client, eid, window=rule, on=str(last + timedelta(days=3)), action="book")
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert rule in refused.text and str(first) in refused.text  # type: ignore[attr-defined]
    assert _appointment(site, eid) is None
    done = _post(
        client, eid, window=rule, on=str(last + timedelta(3)), reason="away", action="book"
    )
    assert done.status_code == 303, done.text  # type: ignore[attr-defined]
    page = client.get(done.headers["location"]).text  # type: ignore[attr-defined]
    assert "outside the window: away" in _section(page)
    timeline = page.split('id="timeline"', 1)[1]
    assert f"Booked {last + timedelta(3)}, window {rule} (outside the window: away)" in timeline
    assert _post(client, eid, window=rule, on=str(first), action="move").status_code == 303  # type: ignore[attr-defined]
    assert _appointment(site, eid).on == first  # type: ignore[attr-defined]
    assert _post(client, eid, window=rule, action="cancel").status_code == 303  # type: ignore[attr-defined]
    assert _appointment(site, eid) is None
    forged = _post(client, eid, csrf="forged", window=rule, on=str(first), action="book")
    assert forged.status_code in (403, 422) and _appointment(site, eid) is None  # type: ignore[attr-defined]


def test_an_auditor_sees_no_form_and_may_not_post(site: Site) -> None:
    eid = episode_of(CONSERVATIVE)
    page = site.client("auditor").get(f"/episodes/{eid}").text
    assert "<form" not in _section(page)
    response = site.client("auditor").post(
        f"/episodes/{eid}/appointment", data={"csrf": "", "window": "x"}, follow_redirects=False
    )
    assert response.status_code == 403


def test_the_worklist_shows_the_day_sorts_by_it_and_flags_a_missed_one(site: Site) -> None:
    client = site.client()
    a, b = episode_of(CONSERVATIVE), episode_of("DEMO-0001")
    rule, first, _ = _first_window(_section(client.get(f"/episodes/{a}").text))
    assert _post(client, a, window=rule, on=str(first), action="book").status_code == 303  # type: ignore[attr-defined]
    page = client.get("/worklist").text
    assert f'<span class="booked-on">{first}</span>' in page and "missed appointment" not in page
    ordered = [eid for _, eid in rows(client.get("/worklist?sort=appointment").text)]
    default = [eid for _, eid in rows(page)]
    assert set(ordered) == set(default) and b in ordered
    assert 'value="appointment" selected' in client.get("/worklist?sort=appointment").text
    day_after = first - NOW.date() + timedelta(days=1, hours=1)
    site.app.state.clock = lambda: NOW + day_after  # its day has passed, no review recorded
    later = site.client().get("/worklist").text  # signed in again: the old session expired
    row = re.search(rf'<tr class="row[^"]*" data-episode="{a}">.*?</tr>', later, re.S)
    assert row is not None and "missed appointment" in row.group(0)
