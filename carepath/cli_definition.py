"""``carepath definition …``: check, draw, export and describe a pathway definition.

Thin like the rest of the CLI: load the definition, call one function of ``pathway`` or
``carepath.fhir_definition``, render. The heavy modules are imported inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carepath.console import fail

if TYPE_CHECKING:
    from pathway.definition import Definition
    from pathway.explore import CheckReport

definition_app = typer.Typer(
    help="Check, draw, export and describe a pathway definition.", no_args_is_help=True
)

DefinitionFile = Annotated[
    Path | None,
    typer.Option("--definition", help="A definition file (default: the shipped one)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _load(path: Path | None) -> Definition:
    from pathway.definition import load_definition
    from pathway.errors import PathwayError

    try:
        return load_definition(path)
    except PathwayError as exc:
        fail(str(exc))


def _print_json(data: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


@definition_app.command()
def check(
    file: Annotated[
        Path | None, typer.Argument(help="The definition file (default: the shipped one).")
    ] = None,
    definition: DefinitionFile = None,
    json_out: Json = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write each counterexample as a scenario file into this directory."),
    ] = None,
) -> None:
    """Explore every abstract case of the definition against PROTOCOL.md's five safety
    properties; exit 1 on a violation, with the shortest counterexample of each."""
    from pathway.explore import check_definition

    report = check_definition(_load(file or definition))
    written = _write_counterexamples(report, out) if out is not None else []
    if json_out:
        _print_json({**report.to_dict(), "written": [str(p) for p in written]})
    else:
        typer.echo(render_report(report, written))
    raise typer.Exit(0 if report.ok else 1)


def _write_counterexamples(report: CheckReport, out: Path) -> list[Path]:
    import orjson

    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for v in report.violations:
            if v.scenario is not None:
                path = out / f"counterexample_{v.property.lower()}.json"
                path.write_bytes(orjson.dumps(v.scenario, option=orjson.OPT_INDENT_2) + b"\n")
                paths.append(path)
        return paths
    except OSError as exc:
        fail(f"--out {out}: {exc.strerror}")


def render_report(report: CheckReport, written: list[Path]) -> str:
    """The check as text: what was explored, the boundaries tried, each violation's path."""
    verdict = "no violation" if report.ok else f"{len(report.violations)} violation(s)"
    lines = [
        f"{report.version}: {report.states_explored} abstract states explored "
        f"({report.events_run} events) in {report.seconds:.2f} s: {verdict}"
    ]
    boundaries = [  # facts whose witnesses fall on both sides of a TX rule
        fact + " " + " · ".join(f"{w} → {'+'.join(tx) or 'stays'}" for w, tx in seen.items())
        for fact, seen in sorted(report.tx_by_witness.items())
        if any(seen.values())
        and any(not tx for tx in seen.values())
        and set(seen) != {"True", "False"}  # booleans say nothing about a boundary
    ]
    if boundaries:
        lines.append("  TX boundaries tried: " + "; ".join(boundaries))
    if report.pruned_facts:
        lines.append("  facts no criterion reads (not explored): " + ", ".join(report.pruned_facts))
    for v in report.violations:
        lines.append(f"  VIOLATION {v.property}: {v.message}")
        lines += [f"      {step}" for step in v.path]
    lines += [f"  counterexample written: {p}  (carepath replay {p})" for p in written]
    return "\n".join(lines)


@definition_app.command()
def diagram(
    format: Annotated[str, typer.Option("--format", help="mermaid or svg.")] = "mermaid",
    state: Annotated[str | None, typer.Option(help="Highlight this state.")] = None,
    definition: DefinitionFile = None,
) -> None:
    """Print the state diagram (mermaid stateDiagram-v2)."""
    from pathway.diagram import mermaid, svg
    from pathway.errors import PathwayError

    if format not in ("mermaid", "svg"):
        fail(f"--format: got {format!r}, expected mermaid or svg")
    defn = _load(definition)
    try:
        text = mermaid(defn, state) if format == "mermaid" else svg(defn, state)
    except PathwayError as exc:
        fail(str(exc))
    sys.stdout.write(text)


@definition_app.command()
def export(
    format: Annotated[str, typer.Option("--format", help="fhir (a FHIR R4B PlanDefinition).")],
    definition: DefinitionFile = None,
) -> None:
    """Export the definition: --format fhir prints a validated FHIR R4B PlanDefinition."""
    if format != "fhir":
        fail(f"--format: got {format!r}, expected fhir")
    from carepath.fhir_definition import plan_definition

    _print_json(plan_definition(_load(definition)))


@definition_app.command()
def show(definition: DefinitionFile = None, json_out: Json = False) -> None:
    """Print the definition's id, version, states and rule count."""
    defn = _load(definition)
    states = [
        {"name": s.name, "label": s.label, "terminal": s.terminal} for s in defn.states.values()
    ]
    info = {
        "id": defn.id,
        "title": defn.title,
        "version": defn.version,
        "initial_state": defn.initial_state,
        "states": states,
        "rules": len(defn.rules),
        "timers": len(defn.timers),
        "facts": len(defn.vocabulary.facts),
    }
    if json_out:
        _print_json(info)
        return
    typer.echo(f"{defn.id}  {defn.version}\n{defn.title}")
    for s in states:
        mark = " (terminal)" if s["terminal"] else ""
        typer.echo(f"  {s['name']:<28} {s['label']}{mark}")
    typer.echo(f"{info['rules']} rules, {info['timers']} timers, {info['facts']} facts")
