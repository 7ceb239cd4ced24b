"""The pages never take a timer's event id from a form: they answer with one of their own ids,
nothing is written under the timer's, and the timer still fires."""

from __future__ import annotations

from datetime import timedelta

from pathway.usecases import timer_event_id
from scheduler.worker import TimerWorker
from tests.support.timer_cohort import timer_firings
from tests.support.web_html import episode_of, hidden
from tests.support.web_site import NOW, Site


def test_the_pages_never_take_a_timers_event_id_from_a_form(site: Site) -> None:
    client, eid = site.client(), episode_of("DEMO-0017")
    uow = site.app.state.uow_factory()
    with uow:
        pending = [t for t in uow.get_episode(eid).timers if t.status == "pending"]
    assert pending, "the conservative-care demo episode has pending timers"
    reserved = timer_event_id(eid, pending[0].key)
    page = client.get(f"/episodes/{eid}").text
    data = {"csrf": hidden(page, "csrf"), "event_id": reserved, "pain_score": "3"}
    response = client.post(f"/episodes/{eid}/observations", data=data, follow_redirects=False)
    assert response.status_code == 303
    assert reserved not in response.headers["location"]
    with uow:
        assert uow.find_outcome(reserved) is None
    later = NOW + timedelta(days=400)
    TimerWorker(site.app.state.uow_factory, site.app.state.definitions).sweep(later)
    fired = [b["timer"] for b in timer_firings(site.app.state.uow_factory, [eid])[eid]]
    assert pending[0].key in fired
