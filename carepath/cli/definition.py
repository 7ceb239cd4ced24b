"""``carepath definition …``: check, draw, export and describe a pathway definition.

Thin like the rest of the CLI: load the definition, call one function of ``pathway`` or
``carepath.fhir.plan_definition``, render. The heavy modules are imported inside the commands.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carepath.cli.console import command_group, fail, run_reporting

if TYPE_CHECKING:
    from pathway.checking.explore import CheckReport
    from pathway.definition import Definition

definition_app = command_group("Check, draw, export and describe a pathway definition.")

DefinitionFile = Annotated[
    Path | None,
    typer.Option("--definition", help="A definition file (default: the pathway's current one)."),
]
PathwayId = Annotated[
    str | None,
    typer.Option(
        "--pathway", help="The pathway's id (default: l1-l2-compression-fracture; see `show`)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _load(path: Path | None, pathway: str | None = None) -> Definition:
    """A file, or the current definition of a pathway (shipped or configured)."""
    from pathway.definition import load_definition
    from pathway.errors import PathwayError

    try:
        if path is not None:
            return load_definition(path)
        from carepath.bootstrap import current_definitions
        from pathway.registry import DefinitionRegistry

        return DefinitionRegistry(current_definitions()).current_for(pathway)
    except PathwayError as exc:
        fail(str(exc))


def _print_json(data: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


@definition_app.command()
def check(
    file: Annotated[
        Path | None, typer.Argument(help="The definition file (default: the pathway's current).")
    ] = None,
    definition: DefinitionFile = None,
    pathway: PathwayId = None,
    json_out: Json = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write each counterexample as a scenario file into this directory."),
    ] = None,
    first: Annotated[
        bool,
        typer.Option(
            "--first",
            help="Stop at the first case that breaks a property: a quick answer while editing "
            "(reachability, rule coverage and dead ends are then not checked).",
        ),
    ] = False,
) -> None:
    """Explore every abstract case of the definition against the safety properties it
    declares; exit 1 on a violation, with the shortest counterexample of each."""
    from pathway.checking.explore import check_definition

    source = file or definition
    report = check_definition(_load(source, pathway), first=first)
    written = _write_counterexamples(report, out) if out is not None else []
    if json_out:
        _print_json({**report.to_dict(), "written": [str(p) for p in written]})
    else:
        typer.echo(render_report(report, written, source))
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


def render_report(
    report: CheckReport, written: list[Path], definition_file: Path | None = None
) -> str:
    """The check as text: what was explored, the boundaries tried, each violation's path, and
    the command that replays each counterexample written (on ``definition_file`` when the
    check ran on one: on the pathway's current definition, it would not break)."""
    verdict = "no violation" if report.ok else f"{len(report.violations)} violation(s)"
    lines = [
        f"{report.version}: {report.states_explored} abstract states explored "
        f"({report.events_run} events) in {report.seconds:.2f} s: {verdict}"
    ]
    if report.stopped_at_first:
        lines.append(
            "  stopped at the first violation (--first): reachability, rule coverage and dead "
            "ends not checked"
        )
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
    on = f"--definition {shlex.quote(str(definition_file))} " if definition_file else ""
    lines += [
        f"  counterexample written: {p}  (carepath replay {on}{shlex.quote(str(p))})"
        for p in written
    ]
    return "\n".join(lines)


@definition_app.command()
def diagram(
    format: Annotated[str, typer.Option("--format", help="mermaid or svg.")] = "mermaid",
    state: Annotated[str | None, typer.Option(help="Highlight this state.")] = None,
    definition: DefinitionFile = None,
    pathway: PathwayId = None,
) -> None:
    """Print the state diagram (mermaid stateDiagram-v2)."""
    from pathway.diagram import SVG_UNAVAILABLE, mermaid
    from pathway.errors import PathwayError

    if format not in ("mermaid", "svg"):
        fail(f"--format: got {format!r}, expected mermaid or svg")
    defn = _load(definition, pathway)
    if format == "svg":
        fail(SVG_UNAVAILABLE)
    try:
        text = mermaid(defn, state)
    except PathwayError as exc:
        fail(str(exc))
    sys.stdout.write(text)


@definition_app.command()
def export(
    format: Annotated[
        str,
        typer.Option(
            "--format",
            help="fhir (a FHIR R4B PlanDefinition) or fhir-bundle (a Bundle of the "
            "PlanDefinition and one R4B Measure per declared measure).",
        ),
    ],
    definition: DefinitionFile = None,
    pathway: PathwayId = None,
) -> None:
    """Export the definition: --format fhir prints a validated FHIR R4B PlanDefinition,
    --format fhir-bundle a Bundle of it and the definition's measures as R4B Measures."""
    if format not in ("fhir", "fhir-bundle"):
        fail(f"--format: got {format!r}, expected fhir or fhir-bundle")
    from carepath.fhir.plan_definition import definition_bundle, plan_definition

    export = plan_definition if format == "fhir" else definition_bundle
    _print_json(export(_load(definition, pathway)))


@definition_app.command()
def show(
    definition: DefinitionFile = None, pathway: PathwayId = None, json_out: Json = False
) -> None:
    """Print the definition's id, version, states and rule count, and the other pathways."""
    defn = _load(definition, pathway)
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
        "pathways": _pathways(),
    }
    if json_out:
        _print_json(info)
        return
    typer.echo(f"{defn.id}  {defn.version}\n{defn.title}")
    for s in states:
        mark = " (terminal)" if s["terminal"] else ""
        typer.echo(f"  {s['name']:<28} {s['label']}{mark}")
    typer.echo(f"{info['rules']} rules, {info['timers']} timers, {info['facts']} facts")
    typer.echo("pathways: " + ", ".join(info["pathways"]))


def _pathways() -> list[str]:
    from carepath.bootstrap import current_definitions

    return [d.id for d in current_definitions()]


# -- versions on the database, and migrating running episodes to one -------------------------


def _stored() -> tuple[Any, Any]:
    """The configured database's unit-of-work factory and its registry of stored versions
    (the configured definition file recorded first if it is new)."""
    from carepath.bootstrap import wire

    wiring = wire()
    return wiring.uow_factory, wiring.definitions


@definition_app.command()
def versions(pathway: PathwayId = None, json_out: Json = False) -> None:
    """List a pathway's definition versions the database knows, with their episodes (live =
    running)."""
    from storage.definitions import stored_versions

    def body() -> tuple[str, list[Any]]:
        factory, definitions = _stored()
        current = definitions.current_for(pathway)
        return current.version, stored_versions(factory.engine, definitions, current.id)

    current, rows = run_reporting(body)
    if json_out:
        _print_json([{**r.__dict__, "current": r.version == current} for r in rows])
        return
    for r in rows:
        mark = "  (current)" if r.version == current else ""
        seen = r.first_seen_at or "document not stored"
        typer.echo(f"{r.version}  {seen}  {r.episodes} episode(s), {r.live} running{mark}")


@definition_app.command()
def migrate(
    to: Annotated[
        str, typer.Option("--to", help='Target version, or "current" (the configured file).')
    ],
    maps: Annotated[
        list[str] | None,
        typer.Option("--map", help="OLD=NEW: a state the target version no longer has."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would change; change nothing.")
    ] = False,
    actor: Annotated[str | None, typer.Option(help="Who migrates (default: the OS user).")] = None,
    pathway: PathwayId = None,
    json_out: Json = False,
) -> None:
    """Move every running episode of a pathway to another of its versions, one audited
    transaction each: states mapped, timers recomputed from clinical history, the new
    version's rules on every event applied."""
    import getpass
    from datetime import UTC, datetime

    from carepath import inputs
    from carepath.cli.console import checked
    from pathway.migration.usecases import FAILED, migrate_all

    actor = checked(inputs.actor, actor or getpass.getuser(), "--actor")
    state_map: dict[str, str] = {}
    for item in maps or ():
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            fail(f"--map: got {item!r}, expected OLD=NEW (a state name on each side)")
        state_map[old] = new

    def body() -> Any:
        factory, definitions = _stored()
        target = definitions.current_for(pathway) if to == "current" else definitions.get(to)
        if target.id != definitions.current_for(pathway).id:
            fail(f"--to: got {to!r}, expected a version of {definitions.current_for(pathway).id}")
        return migrate_all(
            factory,
            definitions,
            target.version,
            state_map,
            now=datetime.now(UTC),
            actor=actor or "",
            dry_run=dry_run,
            progress=bars("migrate"),
        )

    from carepath.progress import Bars

    with Bars(quiet=json_out) as bars:  # stderr, a terminal only: never with --json
        report = run_reporting(body)
    shown = [e for e in report.episodes if e.changes is not None or e.status == FAILED]
    if json_out:
        _print_json(
            {
                "to_version": report.to_version,
                "dry_run": report.dry_run,
                "counts": report.counts(),
                "summary": report.summary(),
                "episodes": [e.to_dict() for e in report.episodes],
            }
        )
    else:
        for e in shown:
            typer.echo(describe_migration(e))
        typer.echo(report.summary())
    raise typer.Exit(1 if report.counts().get(FAILED) else 0)


def describe_migration(e: Any) -> str:
    """One line per episode: what the migration changes (or would), or why it failed."""
    head = f"{e.episode_id}  {e.status}: {e.from_version} → {e.to_version}"
    if e.changes is None:
        return f"{head}: {e.error}"
    c, parts = e.changes, []
    if e.timers_fired_first:
        parts.append(f"{e.timers_fired_first} due timer(s) fired first")
    if c["state"]["mapped"]:
        parts.append(f"state {c['state']['from']} → {c['state']['to']}")
    parts += [f"{t['from']} → {t['to']} ({', '.join(t['rules'])})" for t in c["transitions"]]
    parts += [f"re-timed {t['rule']} {t['due'][:10]} → {t['new_due'][:10]}" for t in c["retimed"]]
    parts += [f"added {t['rule']} due {t['new_due'][:10]}" for t in c["added"]]
    parts += [f"cancelled {t['rule']}" for t in c["cancelled"]]
    parts += [f"not set {t['rule']} (due {t['due'][:10]}, passed)" for t in c["not_set"]]
    return f"{head}: {'; '.join(parts) or 'version only'}"
