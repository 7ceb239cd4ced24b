"""The audit dashboard: each pathway's measures, run charts, outcomes and time in state.

For auditors and admins (coordinators get the 403 page): the clinical audit's question is "how
often did we do what the protocol says, month by month, and whom did we fail?". The numbers
are ``carepath.measures``'s (the same as ``carepath measures --json``); this module reads the
query, calls it and renders. A click on a measure lists its failing episodes with the reason
each missed, fetched by htmx into the measure's card, or as a page of its own without script.

``carepath.measures`` is imported when a page is asked for, not at start-up.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from carepath.api.auth import AUDIT
from carepath.api.services import Services, services
from carepath.web import session
from carepath.web.dashboard_view import BadQuery, DashboardQuery, pathway_panel, read_query
from carepath.web.page_inputs import page_inputs
from pathway.errors import PathwayError

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_inputs)])
Svc = Annotated[Services, Depends(services)]


def auditor(request: Request) -> session.Viewer:
    """The signed-in viewer, if their role may read the audit (auditor, admin)."""
    who = session.viewer(request)
    if who.role not in AUDIT:
        raise session.NotAllowed(who.role, "see the audit dashboard (auditors and admins)")
    return who


def wiring(svc: Services) -> Any:
    from carepath.bootstrap import Wiring

    return Wiring(svc.uow_factory, svc.definitions)  # type: ignore[arg-type]


def _query(svc: Services, pathway: str, month_from: str, month_to: str, as_of: str):  # type: ignore[no-untyped-def]
    return read_query(svc.definitions, svc.clock(), pathway, month_from, month_to, as_of)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(
    request: Request,
    svc: Svc,
    pathway: str = "",
    month_from: Annotated[str, Query(alias="from")] = "",
    to: str = "",
    as_of: str = "",
) -> Response:
    from carepath.web.pages import page

    who = auditor(request)
    options = [(d.id, d.title) for d in svc.definitions.currents()]
    form = {"pathway": pathway, "from": month_from, "to": to, "as_of": as_of}
    try:
        query = _query(svc, pathway, month_from, to, as_of)
    except BadQuery as exc:
        return page(request, "dashboard.html", 400, viewer=who, active="dashboard",
                    panels=[], error=str(exc), form=form, options=options, query=None)  # fmt: skip
    from carepath import measures

    reports = measures.pathway_reports(
        wiring(svc),
        pathway=query.pathway,
        month_from=query.month_from,
        month_to=query.month_to,
        as_of=query.as_of,
    )
    panels = [pathway_panel(r, svc.definitions) for r in reports]
    return page(request, "dashboard.html", viewer=who, active="dashboard", panels=panels,
                error=None, form=form, options=options, query=query)  # fmt: skip


@router.get("/dashboard/failing", response_class=HTMLResponse)
def failing(
    request: Request,
    svc: Svc,
    pathway: str = "",
    measure: str = "",
    month_from: Annotated[str, Query(alias="from")] = "",
    to: str = "",
    as_of: str = "",
) -> Response:
    """The episodes that missed one measure, each with why: a fragment for htmx, else a page."""
    from carepath.web.pages import page

    who = auditor(request)
    partial = request.headers.get("HX-Request") == "true"
    name = "_dashboard_failing.html" if partial else "dashboard_failing.html"
    try:
        query = _query(svc, pathway, month_from, to, as_of)
        if query.pathway is None:
            raise BadQuery("pathway", pathway, "a pathway id")
        episodes = _failing(svc, query, measure.strip())
    except BadQuery as exc:
        return page(request, name, 400, viewer=who, active="dashboard", error=str(exc),
                    episodes=[], measure=measure, query=None)  # fmt: skip
    return page(request, name, viewer=who, active="dashboard", error=None, episodes=episodes,
                measure=measure.strip(), query=query)  # fmt: skip


def _failing(svc: Services, query: DashboardQuery, measure: str) -> list[dict[str, Any]]:
    from carepath import measures

    if not measure:
        raise BadQuery("measure", measure, "a measure id")
    declared = _declared(svc, query.pathway or "")
    if declared is not None and measure not in declared:
        raise BadQuery("measure", measure, "one of " + ", ".join(declared))
    try:
        return measures.measure_episodes(
            wiring(svc),
            pathway=query.pathway or "",
            measure_id=measure,
            failing=True,
            month_from=query.month_from,
            month_to=query.month_to,
            as_of=query.as_of,
        )
    except (PathwayError, LookupError, ValueError) as exc:  # an id the measures do not know
        raise BadQuery("measure", measure, f"a measure of {query.pathway} ({exc})") from None


def _declared(svc: Services, pathway: str) -> list[str] | None:
    """The measure ids the pathway declares, or None when its definition declares none."""
    for d in svc.definitions.currents():
        if d.id == pathway and getattr(d, "measures", None):
            return [m.id for m in d.measures]  # type: ignore[attr-defined]
    return None
