"""``carepath measures``: each pathway's quality measures, or the episodes behind one.

Thin: parse and check the options (one line and exit 2 on a bad one), call
``carepath.measures``, render a table or the JSON contract.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from carepath.cli.console import fail, run_reporting

# the command's option for each field carepath.measures names in an error
_OPTION = {"pathway": "--pathway", "measure": "--episodes", "from": "--from", "to": "--to",
           "as_of": "--as-of"}  # fmt: skip


def _run(action: Any) -> Any:
    from pathway.errors import InvalidMeasureQuery

    def body() -> Any:
        try:
            return action()
        except InvalidMeasureQuery as exc:
            option = _OPTION.get(exc.field, exc.field)
            raise InvalidMeasureQuery(option, exc.value, exc.expected) from None

    return run_reporting(body)


def measures_command(
    pathway: Annotated[str | None, typer.Option(help="Only this pathway (its id).")] = None,
    month_from: Annotated[
        str | None,
        typer.Option("--from", help="First month, YYYY-MM (default: the first with episodes)."),
    ] = None,
    month_to: Annotated[
        str | None,
        typer.Option("--to", help="Last month, YYYY-MM (default: the last with episodes)."),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Measure as at the end of this UTC day, YYYY-MM-DD (default: now)."
        ),
    ] = None,
    episodes: Annotated[
        str | None,
        typer.Option("--episodes", help="List the episodes behind this measure (needs --pathway)."),
    ] = None,
    failing: Annotated[
        bool, typer.Option("--failing", help="With --episodes: only those not in the numerator.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the API's contract).")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="text (the default), json (as --json) or fhir (an R4B Bundle of MeasureReports).",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes for a large pathway's pass (default: one per core)."),
    ] = None,
) -> None:
    """Quality measures of each pathway, computed from its episodes' histories: numerator,
    denominator, ratio and band, by month; outcomes, time in state and refusals."""
    import orjson

    from carepath.measures import measure_episodes, parse_as_of, parse_month, pathway_reports

    def options() -> tuple[str | None, str | None, datetime]:
        lo, hi = parse_month("from", month_from), parse_month("to", month_to)
        return lo, hi, parse_as_of(as_of, datetime.now(UTC))

    lo, hi, when = _run(options)
    chosen = output or ("json" if as_json else "text")
    if chosen not in ("text", "json", "fhir"):
        fail(f"--format: got {output!r}, expected text, json or fhir")
    if as_json and chosen != "json":
        fail(f"--json with --format {chosen}: expected one of them")
    if chosen == "fhir" and episodes is not None:
        fail("--format fhir: the episodes list has no FHIR form; expected --json or text")
    as_json = chosen == "json"
    if episodes is not None and pathway is None:
        fail(f"--episodes {episodes}: expected --pathway too (the pathway the measure is of)")
    if failing and episodes is None:
        fail("--failing: expected --episodes MEASURE_ID (it filters that list)")
    from carepath.bootstrap import wire

    wiring = run_reporting(wire)
    try:
        if episodes is not None:
            assert pathway is not None
            rows = _run(
                lambda: measure_episodes(
                    wiring, pathway=pathway, measure_id=episodes, failing=failing,
                    month_from=lo, month_to=hi, as_of=when,
                )
            )  # fmt: skip
            typer.echo(orjson.dumps(rows).decode() if as_json else episodes_table(rows))
            return
        import os

        from carepath.progress import Bars

        if workers is not None and workers < 1:
            fail(f"--workers: got {workers}, expected a whole number of at least 1")
        cores = workers or os.cpu_count() or 1
        with Bars(quiet=chosen != "text") as bars:  # stderr, a terminal, text output only
            reports = _run(
                lambda: pathway_reports(
                    wiring, pathway=pathway, month_from=lo, month_to=hi, as_of=when,
                    workers=cores, progress=bars,
                )
            )  # fmt: skip
    finally:
        wiring.dispose()
    if chosen == "fhir":
        from carepath.fhir.measure_report import measure_report_bundle

        typer.echo(orjson.dumps(measure_report_bundle(reports)).decode())
    elif as_json:
        typer.echo(orjson.dumps(reports[0] if pathway else reports).decode())
    else:
        typer.echo("\n\n".join(report_table(r) for r in reports))


def _ratio(m: dict[str, Any]) -> str:
    return "-" if m["ratio"] is None else f"{100 * m['ratio']:.1f}%"


def report_table(r: dict[str, Any]) -> str:
    """One pathway's report as aligned text."""
    months = f"{r['from']} to {r['to']}" if r["from"] else "no episodes"
    lines = [f"{r['pathway']} ({r['version']}): {months}, as of {r['as_of']}", ""]
    rows = [("measure", "numerator", "denominator", "ratio", "band", "title")]
    rows += [
        (m["id"], str(m["numerator"]), str(m["denominator"]), _ratio(m), m["band"] or "-",
         m["title"])
        for m in r["measures"]
    ]  # fmt: skip
    lines += _table(rows)
    if r["outcomes"]:
        lines += ["", "outcomes"]
        lines += _table([("state", "rule", "episodes")] + [
            (o["state"], o["rule"], str(o["episodes"])) for o in r["outcomes"]
        ])  # fmt: skip
    if r["time_in_state"]:
        lines += ["", "time in state (completed stays, days)"]
        lines += _table([("state", "episodes", "median", "p90")] + [
            (t["state"], str(t["episodes"]), f"{t['median_days']:.2f}", f"{t['p90_days']:.2f}")
            for t in r["time_in_state"]
        ])  # fmt: skip
    lines += ["", f"appointments outside the window: {r.get('appointments_outside_window', 0)}"]
    if r["refusals"]:
        lines += ["", "refusals"]
        lines += _table([("rule", "count")] + [(x["rule"], str(x["count"])) for x in r["refusals"]])
    return "\n".join(lines)


def episodes_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no episodes"
    table = [("episode", "patient", "in numerator", "reason")]
    table += [
        (r["episode"], r["patient_ref"] or "-", "yes" if r["in_numerator"] else "no", r["reason"])
        for r in rows
    ]
    return "\n".join(_table(table))


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = [all(r[i].replace(".", "").replace("%", "").replace("-", "").isdigit()
                   for r in rows[1:]) for i in range(len(widths))]  # fmt: skip
    out = []
    for r in rows:
        cells = [
            c.rjust(w) if numeric[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out
