"""The API refuses a pending timer's own event id as an Idempotency-Key; the timer still fires."""

from __future__ import annotations

from pathway.usecases import timer_event_id
from scheduler.worker import TimerWorker
from tests.support.api_world import ApiWorld
from tests.support.timer_cohort import timer_firings


def test_the_api_refuses_a_timers_event_id_and_the_timer_still_fires(api: ApiWorld) -> None:
    episode_id = api.open_episode()  # in workup: FU-WORKUP-OVERDUE due in 3 days
    factory = api.app.state.uow_factory
    uow = factory()
    with uow:
        [key] = [t.key for t in uow.get_episode(episode_id).timers if t.status == "pending"]
    reserved = timer_event_id(episode_id, key)
    api.clock.advance(4)
    response = api.call(
        "POST",
        f"/api/episodes/{episode_id}/observations",
        json={"facts": {"pain_score": 4}},
        headers={"Idempotency-Key": reserved},
    )
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key" and response.json()["value"] == reserved
    with uow:
        assert uow.find_outcome(reserved) is None
    TimerWorker(factory, api.app.state.definitions).sweep(api.clock.now)
    fired = [b["timer"] for b in timer_firings(factory, [episode_id])[episode_id]]
    assert key in fired
