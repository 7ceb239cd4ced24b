"""What the worklist page shows: the episodes to list, fetched by the API's worklist query.

The storage query (``storage.worklist``) orders by the earliest pending timer; the page wants
open escalations first too, and those can sit on an episode whose next timer is weeks away (or
that has none). So two queries are merged: every escalated episode, then the rest in due order
up to a cap. Each listed episode's snapshot is then read (cached by the unit of work: one short
query when unchanged) to say why it is listed and to count its tasks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carepath.api.services import Services
from carepath.web.worklist_rows import BUCKETS, Row, build_row, ordered
from pathway.appointments import LIVE
from pathway.model import Episode
from pathway.usecases import DefinitionRegistry
from storage.worklist import UNASSIGNED, WorklistItem, WorklistQuery

CAP = 300  # rows on one page; past that, the search box and the state filter narrow it


@dataclass(frozen=True, slots=True)
class StateOption:
    name: str
    label: str
    terminal: bool


@dataclass(frozen=True, slots=True)
class PathwayOption:
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class WorklistView:
    buckets: dict[str, list[Row]]
    total: int
    truncated: bool
    state: str | None
    search: str
    options: tuple[StateOption, ...]
    pathway: str | None = None
    pathways: tuple[PathwayOption, ...] = ()
    assigned: str = ""  # the filter as given: "", "me", "none" or a coordinator's name
    sort: str = ""  # "" (most urgent first) or "appointment" (booked day first, in each bucket)

    @property
    def counts(self) -> dict[str, int]:
        return {b: len(self.buckets[b]) for b in BUCKETS}


def state_options(
    definitions: DefinitionRegistry, pathway: str | None = None
) -> tuple[StateOption, ...]:
    """The states of one pathway, or of every pathway (a name shared by two, such as
    ``closed``, listed once)."""
    chosen = [d for d in definitions.currents() if pathway in (None, d.id)]
    out: dict[str, StateOption] = {}
    for d in chosen:
        for n, s in d.states.items():
            out.setdefault(n, StateOption(n, s.label, s.terminal))
    return tuple(out.values())


def load_worklist(
    svc: Services,
    now: datetime,
    state: str | None,
    search: str | None,
    pathway: str | None = None,
    assigned: str = "",
    me: str = "",
    sort: str = "",
) -> WorklistView:
    """``assigned``: "me" (``me``, the signed-in token's name), "none" or a name; "" is anyone."""
    definitions = svc.definitions
    pathways = tuple(PathwayOption(d.id, d.title) for d in definitions.currents())
    pathway = pathway if pathway in {p.id for p in pathways} else None
    options = state_options(definitions, pathway)
    names = {o.name for o in options}
    chosen = state if state in names else None
    states = (chosen,) if chosen else tuple(o.name for o in options if not o.terminal)
    text = (search or "").strip()[:100]
    items: dict[str, WorklistItem] = {}
    truncated = False
    for escalated in (True, False):
        query = WorklistQuery(
            states=states, now=now, escalated=escalated, search=text or None, limit=CAP,
            pathways=(pathway,) if pathway else (), assigned=_owner_filter(assigned, me),
        )  # fmt: skip
        page = svc.worklist.page(query)
        for item in page.items:
            items.setdefault(item.id, item)
        truncated = truncated or page.next_cursor is not None
    rows: list[Row] = []
    uow = svc.uow_factory()
    with uow:
        for item in list(items.values())[:CAP]:
            episode = uow.get_episode(item.id)
            rows.append(build_row(definitions.get(episode.definition_version), episode, now))
    buckets = ordered(rows)
    if sort == "appointment":  # the booked day first, nothing booked last; stable otherwise
        for bucket in buckets.values():
            bucket.sort(key=lambda r: (booked_on(r.episode) is None, booked_on(r.episode) or 0))
    return WorklistView(
        buckets=buckets,
        total=len(rows),
        truncated=truncated or len(items) > CAP,
        state=chosen,
        search=text,
        options=options,
        pathway=pathway,
        pathways=pathways,
        assigned=assigned,
        sort=sort,
    )


def booked_on(episode: Episode) -> Any:
    """The day of the review still to attend (booked or missed), else None."""
    a = episode.appointment
    return a.on if a is not None and a.status in LIVE else None


def _owner_filter(assigned: str, me: str) -> str | None:
    if not assigned:
        return None
    return me if assigned == "me" else UNASSIGNED if assigned == "none" else assigned
