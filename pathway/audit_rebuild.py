"""What an episode's stored rows must be, rebuilt from its own audit log, and the first difference.

The chain (``pathway.audit``) proves the log was not edited; this proves the *rows* were not:
the episode row, its observations, timers and tasks are exactly what the log's entries say
happened. ``rebuild`` folds the canonical payloads (``entry_for``) in seq order, applying what
each decision recorded — facts, transitions, timers set, fired and cancelled, tasks opened and
closed, links, the close reason, a migration's repin — the way ``storage.writes`` writes them.
Two columns need the definition the entry ran on, not only the entry: when care started (the
first entered state that ``starts_care``) and the facts remembered at a review (observing in a
``review`` state keeps the definition's ``remembered`` facts). Scheduler bookkeeping (leases,
attempts, the last error) is not a decision and is not checked.

Both sides are plain ``EpisodeRows``: times aware UTC ``datetime``, JSON as parsed values, so
storage reads its rows into the same shape and ``first_difference`` compares them column by
column, naming the first that differs, its stored value and the value the log implies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson

PENDING, FIRED, CANCELLED = "pending", "fired", "cancelled"

# The compared columns, in the order they are checked (the first difference is named).
EPISODE_COLUMNS = (
    "state",
    "closed_reason",
    "version",
    "audit_hash",
    "definition_version",
    "pathway",
    "patient_ref",
    "label",
    "owner",
    "appointment_window",
    "appointment_on",
    "appointment_status",
    "appointment_reason",
    "appointment_deviation",
    "opened_at",
    "state_entered_at",
    "care_started_at",
    "facts",
    "remembered",
    "links",
)  # fmt: skip  (next_due_at, derived from the timers, is checked after them)
OBSERVATION_COLUMNS = ("id", "facts", "at", "recorded_at", "actor", "source")
TIMER_COLUMNS = (
    "status", "due_at", "rule_id", "state", "order", "position", "fired_at", "set_at",
)  # fmt: skip
TASK_COLUMNS = (
    "status", "note", "text", "rule_id", "kind", "state", "created_at", "position", "updated_at",
)  # fmt: skip


class StateFlags(Protocol):
    review: bool
    starts_care: bool


class DefinitionFlags(Protocol):
    """What the rebuild needs of a definition version (``pathway.definition.Definition`` has it)."""

    initial_state: str
    remembered: frozenset[str]
    states: Any  # name → StateFlags


@dataclass(slots=True)
class EpisodeRows:
    """One episode's stored state: its row, observations by seq, timers and tasks by key."""

    episode: dict[str, Any]
    observations: dict[int, dict[str, Any]] = field(default_factory=dict)
    timers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Difference:
    """The first thing an episode's rows and its log disagree on."""

    episode_id: str
    what: str  # "state", "facts: pain_score", "timers: FU-3MONTH@3", "tasks: X@2: status"
    stored: Any
    expected: Any
    problem: str  # the whole sentence after "episode E:"

    @property
    def message(self) -> str:
        return f"episode {self.episode_id}: {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return orjson.loads(
            orjson.dumps(
                {
                    "episode_id": self.episode_id,
                    "what": self.what,
                    "stored": self.stored,
                    "expected": self.expected,
                    "problem": self.problem,
                },
                default=str,
            )
        )


class RebuildError(ValueError):
    """The log itself cannot be folded (an entry naming a definition version not known)."""


@lru_cache(maxsize=65536)
def parse_time(text: str) -> datetime:
    """A time as the canonical payload writes it (RFC 3339), as an aware UTC datetime."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)


def appointment_columns(body: dict[str, Any] | None) -> dict[str, Any]:
    """The episode row's appointment columns for an audit entry's ``appointment`` (None: none)."""
    a = body or {}
    return {
        "appointment_window": a.get("window"), "appointment_on": a.get("on"),
        "appointment_status": a.get("status"), "appointment_reason": a.get("reason"),
        "appointment_deviation": a.get("deviation"),
    }  # fmt: skip


def rebuild(
    episode_id: str,
    entries: Iterable[tuple[bytes | str, str]],
    definition_of: Callable[[str], DefinitionFlags],
) -> EpisodeRows | None:
    """The rows the log ``entries`` (payload, hash), in seq order, say the episode must have;
    None for no entries. ``definition_of`` maps a definition version to its definition."""
    ep: dict[str, Any] | None = None
    facts: dict[str, dict[str, Any]] = {}
    rows = EpisodeRows({})
    timers, tasks = rows.timers, rows.tasks
    for payload, hash_ in entries:
        b = orjson.loads(payload)
        at, recorded_at = parse_time(b["at"]), parse_time(b["recorded_at"])
        version = b["definition_version"]
        try:
            definition = definition_of(version)
        except Exception as exc:  # unknown version: the log names what cannot be rebuilt
            raise RebuildError(f"entry {b['seq']}: definition {version!r}: {exc}") from None
        entered = [t["dest"] for t in b["transitions"]]
        if ep is None:
            ep = rows.episode = {
                "opened_at": at, "state_entered_at": at, "care_started_at": None,
                "patient_ref": b.get("patient_ref"), "label": b.get("label"),
                "owner": None, "closed_reason": None, "remembered": {}, "links": [],
                **appointment_columns(None),
            }  # fmt: skip
            entered.insert(0, definition.initial_state)
            state_before = definition.initial_state
        else:
            state_before = b["state_from"]
        ep["state"], ep["definition_version"] = b["state_to"], version
        ep["version"], ep["audit_hash"] = b["seq"], hash_
        migration = b.get("migration")
        if migration and migration.get("care_started_at") is not None:
            ep["care_started_at"] = parse_time(migration["care_started_at"])
        if b["transitions"]:
            ep["state_entered_at"] = at
        if ep["care_started_at"] is None:
            states = definition.states
            if any(s in states and states[s].starts_care for s in entered):
                ep["care_started_at"] = at
        if "facts" in b:
            observed = b["facts"]
            for name, value in observed.items():
                facts[name] = {"value": value, "observation_id": b["event_id"], "at": at}
            rows.observations[b["seq"]] = {
                "id": b["event_id"], "facts": observed, "at": at, "recorded_at": recorded_at,
                "actor": b["actor"], "source": b["source"],
            }  # fmt: skip
            sdef = definition.states.get(state_before)
            if sdef is not None and sdef.review and definition.remembered:
                ep["remembered"] = {
                    f: facts[f]["value"] if f in facts else None for f in definition.remembered
                }
        for link in b.get("links", ()):
            ep["links"].append(
                [link["episode_id"], link["pathway"], link["rule"], link["relation"]]
            )
        if b["kind"] == "close":
            ep["closed_reason"] = b.get("reason")
        elif b["kind"] == "assign":
            ep["owner"] = b.get("owner")
        if "appointment" in b:  # a booking, or a review that kept one (pathway.appointments)
            ep.update(appointment_columns(b["appointment"]))
        _fold_timers(b, timers, recorded_at)
        _fold_tasks(b, tasks, recorded_at)
    if ep is None:
        return None
    ep["facts"] = facts
    ep["pathway"] = ep["definition_version"].partition("@")[0]
    due = [t["due_at"] for t in timers.values() if t["status"] == PENDING]
    ep["next_due_at"] = min(due, default=None)
    return rows


def _fold_timers(
    b: dict[str, Any], timers: dict[str, dict[str, Any]], recorded_at: datetime
) -> None:
    for t in b["timers_set"]:
        timers[t["key"]] = {
            "status": t["status"], "due_at": parse_time(t["due_at"]), "rule_id": t["rule_id"],
            "state": t["state"], "order": t["order"], "position": len(timers),
            "fired_at": None, "set_at": _time(t.get("set_at")),
        }  # fmt: skip
    fired = b.get("timer")
    if fired is not None and fired in timers:
        timers[fired]["status"], timers[fired]["fired_at"] = FIRED, recorded_at
    for key in b["timers_cancelled"]:
        if key in timers:
            timers[key]["status"], timers[key]["fired_at"] = CANCELLED, None


def _fold_tasks(b: dict[str, Any], tasks: dict[str, dict[str, Any]], recorded_at: datetime) -> None:
    opened_here = set()
    for k in b["tasks_opened"]:
        opened_here.add(k["key"])
        tasks[k["key"]] = {
            "status": k["status"], "note": None, "text": k["text"], "rule_id": k["rule_id"],
            "kind": k["kind"], "state": k["state"], "created_at": parse_time(k["created_at"]),
            "position": len(tasks), "updated_at": None,
        }  # fmt: skip
    for k in b["tasks_closed"]:
        task = tasks.get(k["key"])
        if task is None:
            continue
        task["status"] = k["status"]
        if k["key"] not in opened_here:  # a task opened and closed at once is inserted closed
            task["note"], task["updated_at"] = k["note"], recorded_at


# -- comparing ------------------------------------------------------------------------------


def first_difference(
    episode_id: str, stored: EpisodeRows | None, expected: EpisodeRows | None
) -> Difference | None:
    """The first column, observation, timer or task where the stored rows differ from the log."""
    if stored is None and expected is None:
        return None
    if stored is None or not stored.episode:
        return _diff(
            episode_id,
            "episode",
            None,
            "a row",
            "the episode row is missing, but its audit log has entries",
        )
    if expected is None:
        return _diff(
            episode_id, "audit log", "a row", None, "the episode row has no audit log entries"
        )
    for column in EPISODE_COLUMNS:
        got, want = stored.episode.get(column), expected.episode.get(column)
        if got == want:
            continue
        if column == "facts" and isinstance(got, dict):
            return _keyed(episode_id, "facts", got, want, ("value", "observation_id", "at"), _fact)
        return _diff(
            episode_id, column, got, want, f"{column} is {_show(got)}, expected {_show(want)}"
        )
    for what, got_items, want_items, columns, describe in (
        ("observations", stored.observations, expected.observations, OBSERVATION_COLUMNS, _observation),
        ("timers", stored.timers, expected.timers, TIMER_COLUMNS, _timer),
        ("tasks", stored.tasks, expected.tasks, TASK_COLUMNS, _task),
    ):  # fmt: skip
        found = _keyed(episode_id, what, got_items, want_items, columns, describe)
        if found is not None:
            return found
    got, want = stored.episode.get("next_due_at"), expected.episode.get("next_due_at")
    if got != want:
        problem = f"next_due_at is {_show(got)}, expected {_show(want)}"
        return _diff(episode_id, "next_due_at", got, want, problem)
    return None


def _keyed(
    episode_id: str,
    what: str,
    got: dict[Any, dict[str, Any]],
    want: dict[Any, dict[str, Any]],
    columns: tuple[str, ...],
    describe: Callable[[dict[str, Any]], str],
) -> Difference | None:
    if got == want:
        return None
    for key, w in want.items():
        g = got.get(key)
        label = f"{what}: {key}"
        if g is None:
            return _diff(episode_id, label, None, w, f"{label} is missing (expected {describe(w)})")
        for column in columns:
            if g.get(column) != w.get(column):
                return _diff(
                    episode_id, f"{label}: {column}", g.get(column), w.get(column),
                    f"{label}: {column} is {_show(g.get(column))}, expected {_show(w.get(column))}",
                )  # fmt: skip
    for key, g in got.items():
        if key not in want:
            label = f"{what}: {key}"
            return _diff(
                episode_id,
                label,
                g,
                None,
                f"{label} is not in the audit log (stored {describe(g)})",
            )
    return None


def _diff(episode_id: str, what: str, stored: Any, expected: Any, problem: str) -> Difference:
    return Difference(episode_id, what, stored, expected, problem)


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=_show).decode()
    return repr(value)


def _fact(f: dict[str, Any]) -> str:
    return f"{_show(f.get('value'))} from {f.get('observation_id')} at {_show(f.get('at'))}"


def _observation(o: dict[str, Any]) -> str:
    return f"{o.get('id')} at {_show(o.get('at'))}: {_show(o.get('facts'))}"


def _timer(t: dict[str, Any]) -> str:
    return f"{t.get('status')}, due {_show(t.get('due_at'))}"


def _task(k: dict[str, Any]) -> str:
    return f"{k.get('status')} {k.get('kind')} {k.get('text')!r}"
