"""``carepath audit …``: verify and export the tamper-evident audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from carepath.cli.console import checked, command_group, fail, run_reporting
from carepath.cli.episode import _backend
from carepath.inputs import identifier

audit_app = command_group("Verify and export the tamper-evident audit log.")


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
    """Recompute the keyed hash chains and check them against the latest signed checkpoint,
    then check each episode's rows (state, facts, observations, timers, tasks) equal a rebuild
    from its own audit log; exit 1 naming the first episode and what is wrong."""
    from carepath.audit_verify import describe, verify_database
    from carepath.progress import Bars

    checked(identifier, episode, "--episode")
    definitions, uow = _backend()
    bars = Bars()  # stderr, a terminal only

    def body() -> Any:
        checkpoint = latest_checkpoint_or_fail(checkpoints)
        return verify_database(uow, checkpoint, episode=episode, progress=bars("chains"))

    with bars:
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
    rows_ok = True
    if not chain_only:  # step 2: the rows equal a rebuild from each episode's own log
        from carepath.cli.audit_rows import check_rows

        with bars:
            rows_ok = check_rows(definitions, uow, episode, bars("rows"), report.episodes)
    raise typer.Exit(1 if report.findings or not rows_ok else 0)


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
        str,
        typer.Option(
            "--format",
            help="jsonl, fhir (one FHIR R4B Bundle a line) or xes (an IEEE 1849 event log)",
        ),
    ] = "jsonl",
    pathway: Annotated[
        str | None, typer.Option(help="Only this pathway's episodes (with --format xes).")
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Write to this file instead of stdout (--format xes).")
    ] = None,
) -> None:
    """Write the audit log to stdout: one canonical entry a line with its chain hashes (jsonl),
    or one FHIR R4B Bundle per episode a line (fhir: CarePlan, Tasks, a Provenance per entry),
    or an XES event log for process mining (xes: a trace per episode, streamed)."""
    import orjson

    if format not in ("jsonl", "fhir", "xes"):
        fail(f"--format: got {format!r}, expected jsonl, fhir or xes")
    checked(identifier, episode, "--episode")
    if format == "xes":
        return _export_xes(episode, pathway, out)
    if pathway is not None or out is not None:
        fail(f"--{'pathway' if pathway is not None else 'out'}: only with --format xes")
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


def _export_xes(episode: str | None, pathway: str | None, out: str | None) -> None:
    """The XES event log (``carepath.xes``), read in chunks and written as it is read."""
    from carepath.xes import xes_document
    from storage.audit_stream import audit_entries
    from storage.file_modes import open_private

    if episode is not None:
        fail("--episode: not with --format xes (use --pathway, or none for every episode)")
    definitions, uow = _backend()
    if pathway is not None:
        run_reporting(lambda: definitions.current_for(pathway))  # an unknown id: exit 2
    try:
        sink = open_private(out) if out is not None else sys.stdout.buffer
    except OSError as exc:
        fail(f"--out: cannot write {out!r}: {exc.strerror}")

    def body() -> None:
        with uow:
            for piece in xes_document(audit_entries(uow, pathway)):
                sink.write(piece)
        sink.flush()

    try:
        run_reporting(body)
    finally:
        if out is not None:
            sink.close()
