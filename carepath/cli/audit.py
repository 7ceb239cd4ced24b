"""``carepath audit …``: verify and export the tamper-evident audit log."""

from __future__ import annotations

import sys
from pathlib import Path
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
        bool,
        typer.Option(
            "--chain-only", help="Only the keyed chains and the latest checkpoint (fast)."
        ),
    ] = False,
    checkpoints: Annotated[
        Path | None,
        typer.Option(help="Read checkpoints from here (default: CAREPATH_CHECKPOINT_DIR)."),
    ] = None,
) -> None:
    """Recompute the keyed hash chains and check them against the latest signed checkpoint;
    exit 1 naming the first episode and what is wrong."""
    from carepath.audit_verify import describe, verify_database

    definitions, uow = _backend()

    def body() -> Any:
        checkpoint = latest_checkpoint_or_fail(checkpoints)
        return verify_database(
            uow, checkpoint, episode=episode, chain_only=chain_only, definitions=definitions
        )

    report = run_reporting(body)
    for finding in report.findings:
        typer.echo(describe(finding), err=True)
    anchor = (
        f", checked against the checkpoint of {report.checkpoint.at.isoformat()}"
        if report.checkpoint
        else ", no checkpoint yet (carepath audit checkpoint)"
    )
    verdict = "intact" if report.ok else f"{len(report.findings)} problem(s)"
    typer.echo(f"{report.episodes} episode(s), {report.entries} entries{anchor}: {verdict}")
    raise typer.Exit(1 if report.findings else 0)


@audit_app.command()
def checkpoint(
    to: Annotated[
        Path | None,
        typer.Option(help="A directory or .json file (default: CAREPATH_CHECKPOINT_DIR)."),
    ] = None,
) -> None:
    """Verify the chains, then write a signed checkpoint of their heads outside the database."""
    from datetime import UTC, datetime

    from carepath.audit_verify import take_checkpoint
    from carepath.checkpoints import CheckpointError, Signer, database_identity
    from carepath.settings import Settings

    _, uow = _backend()
    settings = Settings.from_env()

    def body() -> Path:
        signer = Signer(settings.configuration())
        database = database_identity(settings.database_url)
        try:
            return take_checkpoint(
                lambda: uow, signer, database, settings.checkpoints(), datetime.now(UTC), to
            )
        except CheckpointError as exc:
            typer.echo(f"carepath: {exc}", err=True)
            raise typer.Exit(1) from None

    path = run_reporting(body)
    typer.echo(f"checkpoint written: {path}")


def latest_checkpoint_or_fail(directory: Path | None) -> Any:
    """The latest checkpoint of the configured database, its signature verified; a bad one
    ends the command with exit 1 (it is itself a finding)."""
    from carepath.checkpoints import CheckpointError, Signer, database_identity, latest_checkpoint
    from carepath.settings import Settings

    settings = Settings.from_env()
    try:
        return latest_checkpoint(
            directory or settings.checkpoints(),
            database_identity(settings.database_url),
            Signer(settings.configuration()),
        )
    except CheckpointError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


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
