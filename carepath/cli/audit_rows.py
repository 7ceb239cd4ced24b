"""``carepath audit verify``'s second step: each episode's rows against a rebuild from its log.

Kept apart from the chain check (``carepath/cli/audit.py``) so that ``--chain-only`` skips
exactly this step; the check itself is ``storage.audit_rows``.
"""

from __future__ import annotations

from typing import Any

import typer

from carepath.cli.console import run_reporting


def check_rows(
    definitions: Any, uow: Any, episode: str | None, progress: Any = None, total: int = 0
) -> bool:
    """Print the first difference of each broken episode (stderr) and a summary; True if all
    rows equal their logs' rebuild. ``progress(done, total)``: ``total`` is the chain step's
    count of episodes."""
    from storage.audit_rows import verify_uow_rows

    def tick(done: int, _: int) -> None:
        progress(done, total)

    def body() -> Any:
        with uow:
            return verify_uow_rows(
                uow, definitions.get, episode=episode, keep=100,
                progress=tick if progress is not None else None,
            )  # fmt: skip

    report = run_reporting(body)
    if report is None:
        typer.echo("rows: not checked (no SQL database)")
        return True
    for difference in report.differences:
        typer.echo(difference.message, err=True)
    if report.broken > len(report.differences):
        typer.echo(f"... and {report.broken - len(report.differences)} more", err=True)
    verdict = (
        "all equal their audit logs"
        if report.ok
        else f"{report.broken} differ from their audit logs"
    )
    typer.echo(f"rows: {report.episodes} episode(s), {verdict}")
    return report.ok
