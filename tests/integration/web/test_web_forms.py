"""The pages' writes: observations with per-field errors, tasks, requests, CSRF and roles."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from tests.support.web_html import episode_of, field_error, hidden
from tests.support.web_site import NOW, Site

CONSERVATIVE = "DEMO-0017"


def _form(client: TestClient, episode_id: str) -> dict[str, str]:
    page = client.get(f"/episodes/{episode_id}").text
    return {"csrf": hidden(page, "csrf"), "event_id": hidden(page, "event_id")}


def _version(site: Site, episode_id: str) -> int:
    uow = site.app.state.uow_factory()
    with uow:
        return uow.get_episode(episode_id).version


def test_observation_errors_are_shown_next_to_each_field_with_the_input_kept(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    before = _version(site, eid)
    data = {
        **_form(client, eid),
        "pain_score": "11",
        "age": "seventy",
        "neuro_deficit_motor": "yes",
        "fracture_levels": ["L1", "L2"],
    }
    response = client.post(f"/episodes/{eid}/observations", data=data)
    assert response.status_code == 422
    html = response.text
    assert field_error(html, "pain_score") == "! got 11, expected a whole number from 0 to 10"
    assert field_error(html, "age") == "! got 'seventy', expected a whole number from 18 to 120"
    assert field_error(html, "neuro_deficit_motor") is None
    assert 'value="11"' in html and 'value="seventy"' in html  # what was typed stays
    assert '<option value="yes" selected>' in html.split('name="neuro_deficit_motor"', 1)[1]
    levels = html.split('name="fracture_levels"', 1)[1].split("</select>", 1)[0]
    assert '<option value="L1" selected>' in levels and '<option value="L2" selected>' in levels
    assert "Nothing was recorded" in html
    assert _version(site, eid) == before


def test_engine_refusal_of_the_clinical_time_is_shown_next_to_it(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    future = (NOW + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    data = {**_form(client, eid), "pain_score": "3", "at": future}
    response = client.post(f"/episodes/{eid}/observations", data=data)
    assert response.status_code == 422
    assert "expected a time not after now" in (field_error(response.text, "at") or "")


def test_an_empty_observation_asks_for_a_finding(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    response = client.post(f"/episodes/{eid}/observations", data=_form(client, eid))
    assert response.status_code == 422
    assert "enter at least one finding" in response.text


def test_motor_deficit_moves_the_episode_to_immediate_transfer(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    data = {**_form(client, eid), "neuro_deficit_motor": "yes"}
    response = client.post(f"/episodes/{eid}/observations", data=data, follow_redirects=False)
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert 'id="outcome"' in page and "TX-NEURO" in page
    outcome = page.split('id="outcome"', 1)[1].split("</div>", 1)[0]
    assert "Conservative care" in outcome and "Immediate transfer" in outcome
    assert "This episode has ended: Immediate transfer" in page
    assert eid not in client.get("/worklist").text


def test_the_same_form_sent_twice_applies_once(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    data = {**_form(client, eid), "pain_score": "4"}
    client.post(f"/episodes/{eid}/observations", data=data, follow_redirects=False)
    version = _version(site, eid)
    again = client.post(f"/episodes/{eid}/observations", data=data)
    assert "Already recorded" in again.text
    assert _version(site, eid) == version


def test_task_marked_done_and_not_done_with_notes(site: Site) -> None:
    client, eid = site.client(), episode_of("DEMO-0004")  # workup: its orders are open
    page = client.get(f"/episodes/{eid}").text
    keys = [k.split('"', 1)[0] for k in page.split('name="task_key" value="')[1:]]
    assert len(keys) >= 2
    for key, status, note in ((keys[0], "done", "MRI booked"), (keys[1], "not_done", "declined")):
        data = {**_form(client, eid), "task_key": key, "status": status, "note": note}
        response = client.post(f"/episodes/{eid}/tasks", data=data, follow_redirects=False)
        assert response.status_code == 303
    page = client.get(f"/episodes/{eid}").text
    assert f'value="{keys[0]}"' not in page and f'value="{keys[1]}"' not in page
    assert "Marked done:" in page and "“MRI booked”" in page
    assert "Marked not done:" in page and "“declined”" in page


def test_refused_request_shows_its_rule(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    data = {**_form(client, eid), "action": "vertebroplasty"}
    page = client.post(f"/episodes/{eid}/requests", data=data).text
    assert "Request refused." in page and "AUG-NO-VERTEBROPLASTY" in page


def test_a_form_without_the_session_csrf_token_changes_nothing(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    before = _version(site, eid)
    data = {**_form(client, eid), "csrf": "forged", "neuro_deficit_motor": "yes"}
    response = client.post(f"/episodes/{eid}/observations", data=data)
    assert response.status_code == 403 and "This form has expired" in response.text
    assert _version(site, eid) == before


def test_read_only_roles_cannot_record(site: Site) -> None:
    eid = episode_of(CONSERVATIVE)
    for role in ("auditor", "admin"):
        client = site.client(role)
        csrf = hidden(client.get("/worklist").text, "csrf")  # the sign-out form's
        response = client.post(
            f"/episodes/{eid}/observations", data={"csrf": csrf, "pain_score": "2"}
        )
        assert response.status_code == 403, role
        assert "read-only role" in response.text


def test_htmx_submission_with_errors_returns_the_episode_to_swap(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    data = {**_form(client, eid), "pain_score": "-1"}
    response = client.post(
        f"/episodes/{eid}/observations", data=data, headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    assert 'id="episode"' in response.text and field_error(response.text, "pain_score")
