"""Quality measures over HTTP: each pathway's report, and the episodes behind one measure.

For auditors and admins. Thin: the query parameters are checked by ``carepath.measures`` (a
bad month, date, pathway or measure is a 422 naming the parameter), which computes the JSON
contract that ``carepath measures --json`` prints.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from carepath.api.auth import AUDIT, GuardedRoute, bearer, roles
from carepath.api.openapi_docs import AUTH_PROBLEMS, problems
from carepath.bootstrap import Wiring
from carepath.measures import measure_episodes, parse_as_of, pathway_reports

router = APIRouter(
    tags=["measures"],
    route_class=GuardedRoute,
    dependencies=[Depends(bearer)],
    responses=AUTH_PROBLEMS,
)
Month = Annotated[str | None, Query(max_length=7, description="YYYY-MM")]
From = Annotated[str | None, Query(alias="from", max_length=7, description="First month, YYYY-MM")]
AsOf = Annotated[
    str | None,
    Query(max_length=10, description="Measure as at the end of this UTC day, YYYY-MM-DD"),
]


def _wiring(request: Request) -> Wiring:
    state = request.app.state
    return Wiring(state.uow_factory, state.definitions)


@router.get(
    "/api/measures",
    openapi_extra=roles(*AUDIT),
    responses={
        **problems(422),
        200: {
            "description": "The JSON contract, or with format=fhir a FHIR R4B Bundle",
            "content": {
                "application/json": {},
                "application/fhir+json": {"schema": {"type": "object"}},
            },
        },
    },
    summary="Each pathway's measures, outcomes, time in state and refusals",
)
def measures(
    request: Request,
    month_from: From = None,
    to: Month = None,
    as_of: AsOf = None,
    pathway: Annotated[str | None, Query(max_length=200)] = None,
    format: Annotated[
        Literal["json", "fhir"],
        Query(description="json (the contract) or fhir (an R4B Bundle of MeasureReports)"),
    ] = "json",
) -> Any:
    """One report object with ``pathway``, an array of them (one per pathway) without; or, with
    ``format=fhir``, a FHIR R4B Bundle of one MeasureReport per measure."""
    when = parse_as_of(as_of, request.app.state.clock())
    reports = pathway_reports(
        _wiring(request), pathway=pathway, month_from=month_from, month_to=to, as_of=when
    )
    if format == "fhir":
        from carepath.fhir.measure_report import measure_report_bundle

        return JSONResponse(measure_report_bundle(reports), media_type="application/fhir+json")
    return reports[0] if pathway else reports


@router.get(
    "/api/measures/{pathway}/{measure_id}/episodes",
    openapi_extra=roles(*AUDIT),
    responses=problems(422),
    summary="The episodes behind one measure's numbers, each with its reason",
)
def episodes(
    request: Request,
    pathway: str,
    measure_id: str,
    failing: bool = False,
    month_from: From = None,
    to: Month = None,
    as_of: AsOf = None,
) -> list[dict[str, Any]]:
    when = parse_as_of(as_of, request.app.state.clock())
    return measure_episodes(
        _wiring(request), pathway=pathway, measure_id=measure_id, failing=failing,
        month_from=month_from, month_to=to, as_of=when,
    )  # fmt: skip
