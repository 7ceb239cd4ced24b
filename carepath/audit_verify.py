"""``carepath audit verify``: the database checked against its own audit log, step by step.

Each step looks at the database and returns findings, the first of which names an episode and
what is wrong with it. The chain steps (``CHAIN_STEPS``, what ``--chain-only`` runs):

1. every episode's chain recomputed under the audit key, each column checked against its
   hashed content, reaching the head the episode row records and, when there is a checkpoint,
   still holding the checkpointed hash at the checkpointed seq;
2. against the latest signed checkpoint: every checkpointed episode still exists, and the
   episode count did not drop; every chain in the log has its episode row.

Without ``--chain-only`` the command then compares each episode's rows with a rebuild from its
own log (``storage.audit_rows``, streamed over every episode).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from carepath.checkpoints import (
    Checkpoint,
    CheckpointError,
    Signer,
    latest_checkpoint,
    write_checkpoint,
)
from pathway.audit import AuditKey, ChainCheck, verify_chain
from pathway.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Finding:
    episode_id: str | None
    problem: str


@dataclass(slots=True)
class VerifyContext:
    """What the steps share: one open unit of work, the ids to check, the anchor."""

    uow: UnitOfWork
    key: AuditKey
    episode_ids: list[str]
    checkpoint: Checkpoint | None
    whole_database: bool
    chains: list[ChainCheck] = field(default_factory=list)
    progress: Callable[[int, int], None] | None = None  # (chains checked, episodes)


Step = Callable[[VerifyContext], Iterable[Finding]]


@dataclass(slots=True)
class VerifyReport:
    episodes: int
    entries: int
    findings: list[Finding]
    checkpoint: Checkpoint | None
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # of the intact chains

    @property
    def ok(self) -> bool:
        return not self.findings


def check_chains(ctx: VerifyContext) -> Iterable[Finding]:
    heads = ctx.checkpoint.heads if ctx.checkpoint is not None else {}
    for eid in ctx.episode_ids:
        episode = ctx.uow.get_episode(eid)
        check = verify_chain(
            eid,
            ctx.uow.audit_records(eid),
            (episode.version, episode.audit_hash),
            key=ctx.key,
            anchor=heads.get(eid),
        )
        ctx.chains.append(check)
        if ctx.progress is not None:
            ctx.progress(len(ctx.chains), len(ctx.episode_ids))
        if not check.ok:
            yield Finding(eid, check.problem or "broken chain")


def check_checkpoint(ctx: VerifyContext) -> Iterable[Finding]:
    cp = ctx.checkpoint
    present = set(ctx.episode_ids)
    if cp is not None:
        when = cp.at.isoformat()
        if cp.key_id != ctx.key.id:
            yield Finding(
                None,
                f"the checkpoint of {when} was taken under audit key {cp.key_id}, the "
                f"configured key is {ctx.key.id} (CAREPATH_AUDIT_KEY or the key file changed?)",
            )
        for eid in sorted(set(cp.heads) - present) if ctx.whole_database else ():
            seq = cp.heads[eid][0]
            yield Finding(
                eid, f"the checkpoint of {when} saw its chain at entry {seq}; the episode is gone"
            )
        if ctx.whole_database and len(present) < cp.episodes:
            yield Finding(
                None,
                f"{len(present)} episode(s) in the database, the checkpoint of {when} saw "
                f"{cp.episodes}: episodes were deleted",
            )
    if ctx.whole_database:
        logged = _audit_episode_ids(ctx.uow)
        for eid in [e for e in logged if e not in present] if logged is not None else ():
            yield Finding(eid, "it has audit entries but no episode row (deleted)")


def _audit_episode_ids(uow: UnitOfWork) -> list[str] | None:
    if hasattr(uow, "connection"):
        from storage.audit_reads import audit_episode_ids

        return audit_episode_ids(uow)  # type: ignore[arg-type]
    store = getattr(uow, "store", None)
    return sorted(store.audit) if store is not None else None


CHAIN_STEPS: list[Step] = [check_chains, check_checkpoint]


def verify_database(
    uow: UnitOfWork,
    checkpoint: Checkpoint | None,
    *,
    episode: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Run the steps inside one unit of work; every finding, the first first.
    ``progress(done, total)`` counts the episodes whose chain is checked."""
    with uow:
        ids = [episode] if episode else uow.episode_ids()
        if episode:
            uow.get_episode(episode)  # EpisodeNotFound names it
        ctx = VerifyContext(uow, uow.audit_key, ids, checkpoint, episode is None)
        ctx.progress = progress
        findings: list[Finding] = []
        for step in CHAIN_STEPS:
            findings += step(ctx)
    heads = {c.episode_id: (c.entries, c.head_hash) for c in ctx.chains if c.head_hash}
    entries = sum(c.entries for c in ctx.chains)
    return VerifyReport(len(ids), entries, findings, checkpoint, heads)


def take_checkpoint(
    make_uow: Callable[[], UnitOfWork],
    signer: Signer,
    database: str,
    directory: Path,
    now: datetime,
    to: Path | None = None,
) -> Path:
    """Verify the chains (against the latest checkpoint, so that none blesses a truncation),
    then sign and write a checkpoint of their heads; CheckpointError if anything is wrong."""
    latest = latest_checkpoint(directory, database, signer)
    uow = make_uow()
    report = verify_database(uow, latest)
    if not report.ok:
        first = report.findings[0]
        raise CheckpointError(f"not checkpointing a broken audit log: {describe(first)}")
    checkpoint = Checkpoint(database, now, uow.audit_key.id, report.episodes, report.heads)
    return write_checkpoint(checkpoint, signer, to or directory)


def describe(finding: Finding) -> str:
    return (
        f"episode {finding.episode_id}: {finding.problem}"
        if finding.episode_id
        else finding.problem
    )


def checkpoint_writer(
    settings: Any, make_uow: Callable[[], UnitOfWork]
) -> Callable[[datetime], Path]:
    """What the scheduler is handed: ``now`` -> a checkpoint of the configured database written
    to the configured directory (the signing key made on first use)."""
    from carepath.checkpoints import database_identity

    def write(now: datetime) -> Path:
        signer = Signer(settings.configuration())
        database = database_identity(settings.database_url)
        return take_checkpoint(make_uow, signer, database, settings.checkpoints(), now)

    return write
