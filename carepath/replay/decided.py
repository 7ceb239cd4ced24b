"""A scenario decided in memory, ready to be written: the first half of ``replay --database``.

A replayed scenario opens a new episode and sends only new event ids, so nothing it decides
depends on what the database holds. It runs on ``RecordingUnitOfWork`` — the in-memory unit of
work, keeping webhook notices as the SQL one does — and its changes become the rows the SQL unit
of work would have written, built by ``storage.writes.change_rows`` under the database's time
format (a timer's later status changes folded into its insert: the same final row). Nothing
here touches the database: the writer (``carepath.replay.grouped``) does, in the same process.

Measured (one process, this 2-core machine, L1–L2 cohort, ~7 changes an episode): the replay
itself ~400 µs of CPU per episode, building the rows ~100 µs (``change_rows``; the episode
row's columns, facts JSON included, are built only for each episode's last change, when the
bulk write reads them: it was ~230 µs when every change built them), writing and verifying
them ~460 µs.

The one way a scenario could see the database is enrolment looking up the patient's live
episode on another pathway (by patient reference). A replay opens its episodes without one, so
that never happens; if it ever did, ``RecordingUnitOfWork`` refuses to answer from memory and
the scenario goes through the SQL unit of work instead (``Decided.needs_database``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from carepath.replay.runner import ReplayResult, replay
from carepath.replay.scenario import Scenario, load_scenario
from pathway.audit import AuditKey, AuditRecord, verify_chain
from pathway.errors import InvalidScenario
from pathway.model import Episode
from pathway.unit_of_work import Change, InMemoryStore, InMemoryUnitOfWork
from pathway.usecases import DefinitionRegistry
from storage.columns import TimeParam
from storage.writes import ChangeRows, change_rows


class SeesDatabase(Exception):
    """The scenario asked for episodes it did not open: only the database can answer."""


class RecordingUnitOfWork(InMemoryUnitOfWork):
    """The in-memory unit of work of one scenario, which keeps every committed change (and,
    like the SQL unit of work, their webhook notices, unless told that no subscription would
    receive them)."""

    def __init__(self, audit_key: AuditKey, notices: bool = True) -> None:
        super().__init__(InMemoryStore(audit_key=audit_key))
        self.keeps_notices = notices  # type: ignore[misc]
        self.changes: list[Change] = []

    def commit(self) -> None:
        staged = list(self._staged)
        super().commit()  # a conflict raises before anything is applied: nothing recorded
        self.changes.extend(staged)

    def audit_records(self, episode_id: str) -> list[AuditRecord]:
        """Nothing: the only reader is the replay's closing check of the chain, which the
        writer replaces with the check of the rows it stored (``grouped._verified``); recomputing
        the chain in memory as well would cost ~5 % of a scenario for a verdict overwritten."""
        return []

    def episodes_of_patient(self, patient_ref: str, pathway: str) -> list[Episode]:
        raise SeesDatabase(f"episodes of patient {patient_ref!r} on {pathway!r}")


@dataclass(slots=True)
class Decided:
    """One scenario's replay: its result and the rows to write, or why it has neither."""

    source: str
    result: ReplayResult | None = None
    rows: list[ChangeRows] = field(default_factory=list)
    linked: bool = False  # the opened episode's chain links up, as ``entry_for`` sealed it
    error: InvalidScenario | None = None  # not a scenario, or its patient cannot be opened
    scenario: Scenario | None = None  # set when it must go through the SQL unit of work

    @property
    def needs_database(self) -> bool:
        return self.scenario is not None

    @property
    def episode_id(self) -> str:
        """The episode the scenario opened (its first change's)."""
        return self.rows[0].episode_id


def decide(
    scenario: Scenario | str,
    definitions: DefinitionRegistry,
    audit_key: AuditKey,
    time: TimeParam,
    notices: bool = True,
) -> Decided:
    """Replay one scenario (or load it from its path first) in memory; never raises for a bad
    file or patient: the error is in the result, and nothing of that scenario is to be written."""
    source = scenario if isinstance(scenario, str) else scenario.source
    try:
        if isinstance(scenario, str):
            scenario = load_scenario(scenario)
        uow = RecordingUnitOfWork(audit_key, notices)
        result = replay(scenario, definitions, lambda: uow)
    except InvalidScenario as exc:
        return Decided(source, error=exc)
    except SeesDatabase:
        return Decided(source, scenario=scenario)
    return Decided(source, result, *written_rows(uow.changes, time, audit_key))


def written_rows(
    changes: list[Change], time: TimeParam, audit_key: AuditKey
) -> tuple[list[ChangeRows], bool]:
    """A scenario's rows (``folded``), each episode's row already built (now, rather than while
    the writer holds the workers' write turn), and whether the chain of the episode it opened
    links up as ``entry_for`` sealed it (``verify_chain`` of entries made here: no HMAC
    computed again): the writer then checks that the stored rows are these rows, which were
    built from those entries (``storage.bulk_load.verify_stored``)."""
    rows = [change_rows(c, time) for c in changes]
    opened = changes[0].audit.episode_id if changes else None
    chain = [c.audit for c in changes if c.audit.episode_id == opened]
    linked = opened is not None and verify_chain(opened, chain, key=audit_key, columns=False).ok
    last = {written.own["id"]: written for written in rows}
    for written in last.values():
        written.params  # noqa: B018  (read: built)
    return folded(rows), linked


def folded(rows: list[ChangeRows]) -> list[ChangeRows]:
    """A scenario's rows with each status change of a timer it set folded into that timer's
    insert: the row then goes in once with its final status and firing time, which is what the
    insert and the updates leave behind (an update setting a column the insert lacks stays)."""
    inserted: dict[tuple[str, str], dict[str, Any]] = {}
    for change in rows:
        for timer in change.new_timers:
            inserted[(timer["episode_id"], timer["key"])] = timer
        if not change.timer_status:
            continue
        kept = []
        for update in change.timer_status:
            target = inserted.get((update["episode_id"], update["key"]))
            if target is not None and update.keys() <= target.keys():
                target.update(update)
            else:
                kept.append(update)
        change.timer_status = kept
    return rows


def decide_all(
    scenarios: Sequence[Scenario | str],
    definitions: DefinitionRegistry,
    audit_key: AuditKey,
    time: TimeParam,
    notices: bool = True,
) -> list[Decided]:
    """``notices``: work out the webhook notices (only worth it when someone subscribed)."""
    return [decide(s, definitions, audit_key, time, notices) for s in scenarios]
