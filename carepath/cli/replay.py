"""``carepath replay …``: scenario files replayed on a virtual clock, rendered as text or JSON."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from carepath.cli.console import run_reporting


def replay_command(
    files: Annotated[
        list[str], typer.Argument(help="Scenario files (JSON or YAML), see SCENARIOS.md.")
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the replay output as JSON.")
    ] = False,
    definition: Annotated[
        Path | None,
        typer.Option(
            help="Replay against this definition file (it replaces the shipped pathway of its id)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes for large cohorts (default: one per core).")
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="Replay through the SQL unit of work on this database URL ('sqlite://' for in memory)."
        ),
    ] = None,
) -> None:
    """Replay scenario files on a virtual clock; exit 1 if an expectation fails, 2 if a file is not a scenario."""
    from carepath.bootstrap import current_definitions
    from carepath.progress import Bars
    from carepath.replay.runner import replay_files, replay_many
    from carepath.replay.scenario import load_scenario
    from carepath.settings import Settings
    from pathway.usecases import DefinitionRegistry

    def run() -> tuple[list[bytes], list[str], int, list]:
        settings = Settings.from_env()
        if definition is not None:  # this file, beside the other pathways' shipped ones
            settings = replace(settings, definition_path=definition)
        definitions = DefinitionRegistry(current_definitions(settings))
        if json_out and not database:
            outputs, failures, code = replay_files([str(f) for f in files], definitions, workers)
            return outputs, failures, code, []
        tick = bars("replay", "scenarios") if len(files) > 1 or database else None
        if database:  # decided on every core, written in bulk (carepath.replay.grouped)
            from carepath.replay.into_database import replay_into

            paths = [str(f) for f in files]  # loaded by the workers
            key = settings.audit_key()
            results = replay_into(database, paths, definitions, key, tick, workers)
        else:
            scenarios = [load_scenario(f) for f in files]
            results = replay_many(scenarios, definitions, progress=tick)
        outputs = [_dump(r.output) for r in results] if json_out else []
        failures = [f"{r.output['scenario']}: {f}" for r in results for f in r.failures]
        return outputs, failures, max((r.exit_code for r in results), default=0), results

    with Bars(quiet=json_out) as bars:  # stderr, a terminal only: never with --json
        outputs, failures, code, results = run_reporting(run)
    for failure in failures:
        typer.echo(failure, err=True)
    out = sys.stdout.buffer
    if json_out:
        if len(files) == 1:
            out.write(outputs[0] + b"\n")
        else:
            out.write(b"[\n" + b",\n".join(outputs) + b"\n]\n")
    else:
        for result in results:
            typer.echo(_render(result.output, result.failures))
    raise typer.Exit(code)


def _dump(output: dict) -> bytes:
    import orjson

    return orjson.dumps(output, option=orjson.OPT_INDENT_2)


def _render(output: dict, failures: tuple[str, ...]) -> str:
    lines = [f"{output['scenario']}  ({output['definition']['version']})"]
    for step in output["steps"]:
        rules = ", ".join(step["rules"]) or "-"
        extra = ""
        if step["refused"]:
            extra += f"  refused: {', '.join(step['refused'])}"
        if step["error"]:
            extra += f"  error: {step['error']['type']}: {step['error']['message']}"
        timers = ", ".join(t["timer"] for t in step["timers_fired"])
        timers = f"  timers: {timers}" if timers else ""
        lines.append(
            f"  step {step['step']:>2}  day {step['day']:>4}  {step['kind']:<8} → {step['state']:<27}"
            f" {rules}{timers}{extra}"
        )
    verdict = "audit verified" if output["audit_verified"] else "AUDIT CHAIN BROKEN"
    expectations = f"{len(failures)} expectation(s) failed" if failures else "expectations met"
    lines.append(f"  final: {output['final_state']} · {verdict} · {expectations}")
    return "\n".join(lines)
