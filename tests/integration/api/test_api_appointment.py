"""``POST /api/episodes/{id}/appointment`` (book, move, cancel; If-Match and Idempotency-Key as
on every command), ``GET`` its windows, the appointment on the episode and the worklist (booked
day, ``sort=appointment``, missed), on SQLite and PostgreSQL; documented in the OpenAPI schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.support.api_world import T0, WORKUP, ApiWorld


def _day(n: int) -> str:
    return (T0 + timedelta(days=n)).date().isoformat()


def _book(
    api: ApiWorld, ep: str, body: dict[str, Any], role: str = "coordinator", **kw: Any
) -> Any:
    return api.call("POST", f"/api/episodes/{ep}/appointment", role, json=body, **kw)


def _in_care(api: ApiWorld, ref: str = "MRN-1") -> str:
    ep = api.open_episode(ref)
    done = api.call("POST", f"/api/episodes/{ep}/observations", json={"facts": WORKUP})
    assert done.status_code == 201, done.text
    return ep


def test_book_move_cancel_shown_on_the_episode_and_its_windows(api_on: ApiWorld) -> None:
    api = api_on
    ep = _in_care(api)
    windows = api.call("GET", f"/api/episodes/{ep}/appointment", "auditor").json()
    assert windows["appointment"] is None
    assert [
        (w["window"], w["status"], w["first_day"], w["last_day"]) for w in windows["windows"]
    ] == [
        ("FU-REASSESS", "upcoming", _day(28), _day(42)),
        ("FU-3MONTH", "upcoming", _day(90), _day(104)),
    ]
    before = api.episode(ep)
    made = _book(api, ep, {"window": "FU-REASSESS", "on": _day(35)})
    assert made.status_code == 201, made.text
    assert made.json()["outcome"]["kind"] == "booking"
    assert api.episode(ep)["appointment"] == {
        "window": "FU-REASSESS", "on": _day(35), "status": "booked", "reason": None,
        "deviation": False,
    }  # fmt: skip
    refused = _book(api, ep, {"action": "move", "window": "FU-REASSESS", "on": _day(45)})
    assert refused.status_code == 422 and refused.json()["field"] == "on"
    assert "FU-REASSESS" in refused.json()["detail"] and _day(42) in refused.json()["detail"]
    moved = _book(
        api, ep, {"action": "move", "window": "FU-REASSESS", "on": _day(45), "reason": "away"}
    )
    assert moved.status_code == 201, moved.text
    assert api.episode(ep)["appointment"]["deviation"] is True
    assert _book(api, ep, {"action": "cancel", "window": "FU-REASSESS"}).status_code == 201
    after = api.episode(ep)
    assert after["appointment"] is None and after["timers"] == before["timers"]
    kinds = [e["kind"] for e in api.history(ep)][-3:]
    assert kinds == ["booking", "booking", "booking"]


def test_if_match_idempotency_and_roles_as_on_every_command(api: ApiWorld) -> None:
    ep = _in_care(api)
    body = {"window": "FU-REASSESS", "on": _day(30)}
    assert _book(api, ep, body, "auditor").status_code == 403
    tag = api.call("GET", f"/api/episodes/{ep}").headers["ETag"]
    ok = _book(api, ep, body, headers={"If-Match": tag, "Idempotency-Key": "bk-1"})
    assert ok.status_code == 201, ok.text
    again = _book(api, ep, body, headers={"If-Match": tag, "Idempotency-Key": "bk-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    other = _book(api, ep, {**body, "on": _day(31)}, headers={"Idempotency-Key": "bk-1"})
    assert other.status_code == 422 and other.json()["field"] == "Idempotency-Key"
    stale = _book(api, ep, {**body, "action": "move"}, headers={"If-Match": tag})
    assert stale.status_code == 412
    reserved = _book(api, ep, body, headers={"Idempotency-Key": "appointment:x"})
    assert reserved.status_code == 422


BAD = [
    {"window": "FU-REASSESS", "on": "2026-W14-1"},
    {"window": "FU-REASSESS", "on": 20260406},
    {"window": "FU-REASSESS"},
    {"window": "FU-REASSESS", "action": "cancel", "on": "2026-04-06"},
    {"window": "FU-REASSESS", "action": "missed", "on": "2026-04-06"},
    {"window": "FU-NOPE", "on": "2026-04-06"},
    {"window": "FU-REASSESS", "on": "2026-05-06", "reason": "   "},
]


def test_bad_bookings_are_422_and_write_nothing(api: ApiWorld) -> None:
    ep = _in_care(api)
    version = api.episode(ep)["version"]
    for body in BAD:
        refused = _book(api, ep, body)
        assert refused.status_code == 422, (body, refused.text)
    assert api.episode(ep)["version"] == version


def test_the_worklist_shows_the_booked_day_sorts_by_it_and_shows_missed(api_on: ApiWorld) -> None:
    api = api_on
    first, second, none = _in_care(api, "MRN-1"), _in_care(api, "MRN-2"), _in_care(api, "MRN-3")
    assert _book(api, first, {"window": "FU-REASSESS", "on": _day(40)}).status_code == 201
    assert _book(api, second, {"window": "FU-REASSESS", "on": _day(29)}).status_code == 201
    api.clock.advance(30.5)
    listed = api.call("GET", "/api/episodes?sort=appointment&pathway=l1-l2-compression-fracture")
    assert listed.status_code == 200, listed.text
    items = [i for i in listed.json()["items"] if i["id"] in (first, second, none)]
    assert [i["id"] for i in items] == [second, first, none]
    assert [(i["appointment"] or {}).get("on") for i in items] == [_day(29), _day(40), None]
    assert [i["missed"] for i in items] == [True, False, False]
    assert api.call("GET", "/api/episodes?sort=nope").status_code == 422


def test_the_route_is_documented(api: ApiWorld) -> None:
    schema = api.call("GET", "/openapi.json").json()
    post = schema["paths"]["/api/episodes/{episode_id}/appointment"]["post"]
    assert "Idempotency-Key" in str(post["parameters"]) and "201" in post["responses"]
    assert "get" in schema["paths"]["/api/episodes/{episode_id}/appointment"]
