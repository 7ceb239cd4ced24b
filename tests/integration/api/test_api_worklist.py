"""The worklist on SQLite and PostgreSQL: overdue first, then due soonest, then undated; filters;
a keyset cursor that neither repeats nor skips; terminal episodes only when asked for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from pathway import usecases
from storage import worklist
from tests.support.api_world import PRESENTATION, PROFILE, T0, WORKUP, ApiWorld


def _episodes(api: ApiWorld) -> dict[str, str]:
    """Five episodes, by letter: A overdue in intake, B due in workup, C closed, D in care,
    E in intake with its overdue escalation open (nothing pending). Clock: T0 + 2 days."""
    factory, defs = api.app.state.uow_factory, api.app.state.definitions
    ids: dict[str, str] = {}

    def open_(letter: str, label: str, days: float = 0) -> str:
        at = T0 + timedelta(days=days)
        applied = usecases.open_episode(
            factory(), defs, PROFILE, at=at, now=at, actor="t",
            patient_ref=f"MRN-10{len(ids)}", label=label,
        )  # fmt: skip
        ids[letter] = applied.outcome.episode_id
        return ids[letter]

    def observe(episode_id: str, facts: dict[str, Any]) -> None:
        usecases.observe(factory(), defs, episode_id, facts, at=T0, now=T0, actor="t")

    open_("A", "Alpha ward")
    observe(open_("B", "alpha bay"), PRESENTATION)
    closed = open_("C", "Beta")
    usecases.close(factory(), defs, closed, "declined", at=T0, now=T0, actor="t")
    in_care = open_("D", "Gamma")
    observe(in_care, PRESENTATION)
    observe(in_care, WORKUP)
    escalated = open_("E", "Delta", days=-2)
    usecases.fire_due_timers(factory(), defs, T0, episode_id=escalated)
    api.clock.now = T0 + timedelta(days=2)
    return ids


# D (78, in conservative care) enrolled a fracture-liaison episode: these tests list L1–L2 only.
L1 = "pathway=l1-l2-compression-fracture"


def _listed(api: ApiWorld, ids: dict[str, str], query: str = "") -> list[str]:
    response = api.call("GET", f"/api/episodes?{L1}&{query}")
    assert response.status_code == 200, response.text
    letters = {v: k for k, v in ids.items()}
    return [letters[item["id"]] for item in response.json()["items"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["A", "B", "D", "E"]),
        ("overdue=true", ["A"]),
        ("escalated=true", ["E"]),
        (f"due_before={(T0 + timedelta(days=5)).isoformat().replace('+', '%2B')}", ["A", "B"]),
        ("state=closed", ["C"]),
        ("state=intake", ["A", "E"]),
        ("state=workup&state=closed", ["B", "C"]),
        ("q=ALPHA", ["A", "B"]),
        ("q=mrn-10", ["A", "B", "D", "E"]),
        ("q=MRN-102", []),  # C: closed
        ("q=MRN-102&state=closed", ["C"]),
        ("q=lpha", []),  # a prefix, not a substring
    ],
)
def test_the_worklist_orders_and_filters(api_on: ApiWorld, query: str, expected: list[str]) -> None:
    ids = _episodes(api_on)
    assert _listed(api_on, ids, query) == expected


@pytest.mark.parametrize("walk_from", [1, 3000])
def test_escalated_lists_the_escalated_rows_of_the_worklist_in_its_order(
    api_on: ApiWorld, walk_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Few open escalations: listed and sorted; many: the worklist walked, each row tested."""
    monkeypatch.setattr(worklist, "WALK_FROM", walk_from)
    ids = _episodes(api_on)
    api_on.clock.now = T0 + timedelta(days=43)  # D: reassessment overdue, a timer still pending
    factory, definitions = api_on.app.state.uow_factory, api_on.app.state.definitions
    usecases.fire_due_timers(factory(), definitions, api_on.clock(), episode_id=ids["D"])
    everything = api_on.call("GET", "/api/episodes").json()["items"]
    escalated = [i["id"] for i in everything if i["escalated"]]
    listed = api_on.call("GET", "/api/episodes?escalated=true&limit=1").json()
    assert listed["items"][0]["id"] == escalated[0] == ids["D"]
    assert everything[[i["id"] for i in everything].index(ids["D"])]["next_due_at"] is not None
    rest = api_on.call("GET", f"/api/episodes?escalated=true&cursor={listed['next_cursor']}")
    assert [i["id"] for i in rest.json()["items"]] == escalated[1:] == [ids["E"]]


def test_rows_say_whether_they_are_overdue_and_escalated(api: ApiWorld) -> None:
    ids = _episodes(api)
    items = {i["id"]: i for i in api.call("GET", "/api/episodes").json()["items"]}
    assert (items[ids["A"]]["overdue"], items[ids["A"]]["escalated"]) == (True, False)
    assert (items[ids["E"]]["overdue"], items[ids["E"]]["escalated"]) == (False, True)
    assert items[ids["E"]]["next_due_at"] is None
    assert items[ids["B"]]["patient_ref"] == "MRN-101"


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_pages_chain_through_every_row_once(api_on: ApiWorld, limit: int) -> None:
    ids = _episodes(api_on)
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = api_on.call("GET", f"/api/episodes?{L1}&limit={limit}{cursor}").json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [ids[k] for k in "ABDE"]


def test_the_worklist_spans_pathways_with_a_pathway_column_and_filter(api_on: ApiWorld) -> None:
    ids = _episodes(api_on)
    items = api_on.call("GET", "/api/episodes").json()["items"]
    by_pathway = {i["id"]: i["pathway"] for i in items}
    enrolled = [i for i, p in by_pathway.items() if p == "fracture-liaison"]
    assert len(enrolled) == 1 and enrolled[0] not in ids.values()
    assert {by_pathway[ids[k]] for k in "ABDE"} == {"l1-l2-compression-fracture"}
    only = api_on.call("GET", "/api/episodes?pathway=fracture-liaison").json()["items"]
    assert [i["id"] for i in only] == enrolled
    unknown = api_on.call("GET", "/api/episodes?pathway=nope")
    assert unknown.status_code == 422 and "fracture-liaison" in unknown.text


def test_a_page_boundary_holds_while_episodes_are_written(api: ApiWorld) -> None:
    ids = _episodes(api)
    first = api.call("GET", f"/api/episodes?{L1}&limit=2").json()
    api.open_episode(patient_ref="MRN-NEW")  # due in 3 days after T0+2: after B and before D
    rest = api.call("GET", f"/api/episodes?{L1}&limit=10&cursor={first['next_cursor']}").json()
    listed = [i["id"] for i in first["items"] + rest["items"]]
    assert listed[:2] == [ids["A"], ids["B"]] and listed[-2:] == [ids["D"], ids["E"]]
    assert len(listed) == len(set(listed)) == 5
