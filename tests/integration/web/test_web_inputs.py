"""The pages keep to the API's input rules (``carepath.inputs``): a NUL byte, a control
character or a year-1 time in an address, a query, or a form is a 422 page naming the field,
on SQLite and on PostgreSQL (which cannot store NUL: a DataError, a 500, before), and nothing
is recorded. Asset URLs never echo the request's Host header.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.web_html import episode_of, hidden
from tests.support.web_site import NOW, Site

CONSERVATIVE = "DEMO-0017"


@pytest.fixture
def site_on(database_url: str) -> Iterator[Site]:
    from carepath.demo import load_cohort
    from carepath.server import build_app
    from carepath.settings import Settings

    app = build_app(Settings(database_url, None), scheduler=False)
    app.state.clock = lambda: NOW
    load_cohort(app.state.uow_factory, app.state.definitions, NOW)
    tokens = {r: app.state.tokens.create(f"test-{r}", r, NOW)[1] for r in ("coordinator",)}
    yield Site(app, tokens)
    app.state.uow_factory.dispose()


BAD_ADDRESSES = {
    "NUL in the episode id": "/episodes/a%00b",
    "control character in the episode id": "/episodes/a%01b",
    "NUL in the search": "/worklist?q=MRN%00",
    "NUL in the state": "/worklist?state=workup%00",
    "NUL in the pathway": "/worklist?pathway=a%00",
    "NUL in the event": "/episodes/{episode}?event=a%00b",
    "long search": "/worklist?q=" + "x" * 101,
}


def _form(client: TestClient, episode_id: str) -> dict[str, str]:
    page = client.get(f"/episodes/{episode_id}").text
    return {"csrf": hidden(page, "csrf"), "event_id": hidden(page, "event_id")}


def _version(site: Site, episode_id: str) -> int:
    with site.app.state.uow_factory() as uow:
        return uow.get_episode(episode_id).version


BAD_FORMS = {
    "NUL in a task note": ("tasks", {"task_key": "x", "status": "done", "note": "a\x00b"}),
    "NUL in a close reason": ("close", {"reason": "declined\x00"}),
    "NUL in an action": ("requests", {"action": "vertebro\x00plasty"}),
    "NUL in a fact": ("observations", {"pain_score": "3\x00"}),
    "long note": ("tasks", {"task_key": "x", "status": "done", "note": "n" * 2001}),
}


def test_a_bad_address_query_or_form_is_a_422_page_and_nothing_is_recorded(
    site_on: Site,
) -> None:
    """One site per database (loading the cohort is the slow part), every break on it."""
    client, eid = site_on.client(), episode_of(CONSERVATIVE)
    before = _version(site_on, eid)
    for name, address in BAD_ADDRESSES.items():
        response = client.get(address.format(episode=eid))
        assert response.status_code == 422, (name, response.text[:300])
        assert "text/html" in response.headers["content-type"]
        assert "Nothing was recorded" in response.text
    for name, (command, fields) in BAD_FORMS.items():
        data = {**_form(client, eid), **fields}
        response = client.post(f"/episodes/{eid}/{command}", data=data)
        assert response.status_code == 422, (name, response.text[:300])
        assert "Nothing was recorded" in response.text
    assert _version(site_on, eid) == before
    signed_out = site_on.client(None)
    page = signed_out.get("/login")
    data = {"token": "cpt_\x00", "nonce": hidden(page.text, "nonce"), "next": ""}
    assert signed_out.post("/login", data=data).status_code == 422


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59", "1800-01-01"])
def test_an_observation_time_out_of_range_is_shown_next_to_the_field(site: Site, at: str) -> None:
    client, eid = site.client(), episode_of(CONSERVATIVE)
    before = _version(site, eid)
    data = {**_form(client, eid), "pain_score": "3", "at": at}
    response = client.post(f"/episodes/{eid}/observations", data=data)
    assert response.status_code == 422
    assert "expected a date and time" in response.text
    assert _version(site, eid) == before


def test_asset_urls_do_not_echo_the_host_header(site: Site) -> None:
    client = site.client(None)
    page = client.get("/login", headers={"Host": "evil.example"}).text
    assert "evil.example" not in page
    assert 'src="/static/htmx.min.js"' in page and 'href="/static/carepath.css"' in page


def test_asset_urls_follow_the_configured_base_url(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAREPATH_BASE_URL", "https://carepath.example.org/")
    page = site.client(None).get("/login", headers={"Host": "evil.example"}).text
    assert 'src="https://carepath.example.org/static/htmx.min.js"' in page
    assert "evil.example" not in page


def test_a_coordinator_sees_the_same_actors_on_the_page_and_the_api(site: Site) -> None:
    """Page and API agree: the episode's timeline, with who did each step, for a coordinator."""
    eid = episode_of(CONSERVATIVE)
    page = site.client().get(f"/episodes/{eid}").text
    bearer = {"Authorization": f"Bearer {site.tokens['coordinator']}"}
    history = site.client(None).get(f"/api/episodes/{eid}/history", headers=bearer)
    assert history.status_code == 200
    actors = {e["actor"] for e in history.json()}
    assert actors and all(f"by {actor}" in page for actor in actors)


def test_no_template_builds_a_url_from_the_host_header() -> None:
    """``url_for`` writes the request's Host into the page: templates use ``asset()``."""
    from carepath.web.rendering import TEMPLATES

    users = [p.name for p in TEMPLATES.glob("*.html") if "url_for(" in p.read_text()]
    assert users == []


def test_every_page_route_checks_its_inputs(site: Site) -> None:
    """A page route added later gets the rules too: its router depends on ``page_inputs``."""
    from carepath.api.methods import _routes
    from carepath.web.page_inputs import page_inputs

    def calls(dependant: object) -> set[object]:
        found = {getattr(dependant, "call", None)}
        for sub in getattr(dependant, "dependencies", ()):
            found |= calls(sub)
        return found

    pages = [
        route
        for route in _routes(site.app.routes)
        if getattr(route, "dependant", None) is not None
        and not route.path.startswith(("/api/", "/openapi"))
        and route.path != "/"
    ]
    assert len(pages) >= 8  # sign-in, sign-out, worklist, episode and its four forms
    assert [r.path for r in pages if page_inputs not in calls(r.dependant)] == []
