"""``carepath audit …``: verify and export the tamper-evident audit log."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from carepath.cli.console import fail, run_reporting
from carepath.cli.episode import _backend

audit_app = typer.Typer(
    help="Verify and export the tamper-evident audit log.", no_args_is_help=True
)


@audit_app.command()
def verify(
    episode: Annotated[str | None, typer.Option(help="Only this episode.")] = None,
    chain_only: Annotated[
        bool, typer.Option("--chain-only", help="Only the hash chains (skip the rows check).")
    ] = False,
) -> None:
    """Recompute the hash chains, then check each episode's rows (state, facts, observations,
    timers, tasks) equal a rebuild from its own audit log; exit 1 naming the first difference."""
    from pathway.audit import verify_chain

    definitions, uow = _backend()

    def body() -> list[Any]:
        with uow:
            ids = [episode] if episode else uow.episode_ids()
            checks = []
            for eid in ids:
                ep = uow.get_episode(eid)
                checks.append(
                    verify_chain(eid, uow.audit_records(eid), (ep.version, ep.audit_hash))
                )
            return checks

    checks = run_reporting(body)
    bad = [c for c in checks if not c.ok]
    for c in bad:
        typer.echo(f"episode {c.episode_id}: {c.problem}", err=True)
    entries = sum(c.entries for c in checks)
    typer.echo(
        f"{len(checks)} episode(s), {entries} entries: {'intact' if not bad else f'{len(bad)} broken'}"
    )
    rows_ok = True
    if not chain_only:  # step 2: the rows equal a rebuild from each episode's own log
        from carepath.cli.audit_rows import check_rows

        rows_ok = check_rows(definitions, uow, episode)
    raise typer.Exit(1 if bad or not rows_ok else 0)


@audit_app.command()
def export(
    episode: Annotated[str | None, typer.Option(help="Only this episode.")] = None,
    format: Annotated[
        str, typer.Option("--format", help="jsonl, or fhir (one FHIR R4B Bundle a line)")
    ] = "jsonl",
) -> None:
    """Write the audit log to stdout: one canonical entry a line with its chain hashes (jsonl),
    or one FHIR R4B Bundle per episode a line (fhir: CarePlan, Tasks, a Provenance per entry)."""
    import orjson

    if format not in ("jsonl", "fhir"):
        fail(f"--format: got {format!r}, expected jsonl or fhir")
    definitions, uow = _backend()

    def body() -> None:
        out = sys.stdout.buffer
        with uow:
            ids = [episode] if episode else uow.episode_ids()
            for eid in ids:
                ep = uow.get_episode(eid)
                if format == "fhir":
                    from carepath.fhir.audit_bundle import episode_bundle

                    definition = definitions.get(ep.definition_version)
                    bundle = episode_bundle(ep, uow.audit_records(eid), definition)
                    out.write(orjson.dumps(bundle) + b"\n")
                    continue
                for r in uow.audit_records(eid):
                    line = {
                        "entry": orjson.loads(r.payload),
                        "prev_hash": r.prev_hash,
                        "hash": r.hash,
                    }
                    out.write(orjson.dumps(line) + b"\n")

    run_reporting(body)
