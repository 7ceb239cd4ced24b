"""The pages' hidden event ids: the signed-in token's idempotency keys, bound to the request."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.web_html import episode_of, hidden
from tests.support.web_site import NOW, Site, sign_in

CONSERVATIVE, OTHER = "DEMO-0017", "DEMO-0004"
REFUSED = "This form was already sent, with other values"


def _form(client: TestClient, episode_id: str) -> dict[str, str]:
    page = client.get(f"/episodes/{episode_id}").text
    return {"csrf": hidden(page, "csrf"), "event_id": hidden(page, "event_id")}


def _version(site: Site, episode_id: str) -> int:
    uow = site.app.state.uow_factory()
    with uow:
        return uow.get_episode(episode_id).version


def _observe(client: TestClient, episode_id: str, data: dict[str, str], pain: str) -> object:
    return client.post(
        f"/episodes/{episode_id}/observations",
        data={**data, "pain_score": pain},
        follow_redirects=False,
    )


def test_the_same_form_sent_again_with_other_values_is_refused_on_the_page(site: Site) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    data = _form(client, eid)
    assert _observe(client, eid, data, "4").status_code == 303
    version = _version(site, eid)
    again = _observe(client, eid, data, "2")
    assert again.status_code == 422 and REFUSED in again.text and "body differs" in again.text
    assert _version(site, eid) == version


def test_an_event_id_sent_to_another_episode_or_command_is_refused(site: Site) -> None:
    client, eid, other = site.client(), episode_of(CONSERVATIVE), episode_of(OTHER)
    data = _form(client, eid)
    assert _observe(client, eid, data, "4").status_code == 303
    versions = _version(site, eid), _version(site, other)
    to_other = _observe(client, other, {**data, "csrf": data["csrf"]}, "4")
    assert to_other.status_code == 422 and "episode differs" in to_other.text
    request = client.post(f"/episodes/{eid}/requests", data={**data, "action": "kyphoplasty"})
    assert request.status_code == 422 and "command differs" in request.text
    assert (_version(site, eid), _version(site, other)) == versions


def test_another_users_form_with_the_same_event_id_is_their_own(site: Site) -> None:
    eid = episode_of(CONSERVATIVE)
    mine = site.client()
    data = _form(mine, eid)
    assert _observe(mine, eid, data, "4").status_code == 303
    version = _version(site, eid)
    theirs = TestClient(site.app, base_url="http://testserver")
    sign_in(theirs, site.app.state.tokens.create("second-coordinator", "coordinator", NOW)[1])
    sent = _observe(theirs, eid, {**data, "csrf": _form(theirs, eid)["csrf"]}, "3")
    assert sent.status_code == 303 and "again=1" not in sent.headers["location"]
    assert _version(site, eid) == version + 1
