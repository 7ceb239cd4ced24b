"""The worklist's rows: which bucket each episode is in, and why it is on the list at all.

A coordinator's first question is "what must I do now?", so rows come in three buckets:
overdue (an open escalation, or a timer already past due that no scheduler has fired yet),
due within the next 24 hours, and the rest. Within a bucket the most overdue, or the soonest
due, comes first. Each row says in words why it is there ("Reassessment overdue by 3 days
(FU-REASSESS-OVERDUE)"), built from the escalation's own text and the rule titles of the
definition, so a new pathway reads right without touching this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pathway.definition import Definition
from pathway.model import OPEN, Episode, Task, Timer
from pathway.work import derived_values

OVERDUE, TODAY, LATER = "overdue", "today", "later"
BUCKETS = (OVERDUE, TODAY, LATER)
BUCKET_LABELS = {OVERDUE: "Overdue", TODAY: "Due within 24 hours", LATER: "Upcoming"}
TODAY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Reason:
    """One line of 'why it is here': the words, and the rule that put it there."""

    text: str
    rule_id: str | None
    urgent: bool


def day_counts(
    definition: Definition | None, episode: Episode, now: datetime
) -> tuple[tuple[str, int], ...]:
    """The definition's day counts that run from the start of care or a date fact (the episode's
    opening and its time in state are shown anyway), labelled from their names."""
    if definition is None:
        return ()
    values = derived_values(definition, episode, now)
    return tuple(
        (name.replace("_", " ").capitalize(), values[name])
        for name, d in definition.derived.items()
        if (d.days_since == "care_start" or d.date_fact) and name in values
    )


@dataclass(frozen=True, slots=True)
class Row:
    """A worklist row, ready for the template."""

    episode: Episode
    pathway_title: str
    state_label: str
    terminal: bool
    bucket: str
    days_in_state: int
    clocks: tuple[tuple[str, int], ...]  # the pathway's own day counts, e.g. ("Care day", 30)
    next_timer: Timer | None
    next_timer_title: str | None
    escalations: int
    open_tasks: int
    reasons: tuple[Reason, ...]
    sort_key: tuple[float, str]


def build_row(definition: Definition, episode: Episode, now: datetime) -> Row:
    pending = episode.pending_timers()
    escalations = episode.open_escalations()
    late = [t for t in pending if t.due_at <= now]
    upcoming = [t for t in pending if t.due_at > now]
    next_timer = pending[0] if pending else None
    reasons = [_escalation_reason(t, now) for t in escalations]
    reasons += [_late_timer_reason(definition, t, now) for t in late]
    if escalations or late:
        bucket = OVERDUE
        oldest = min([t.created_at for t in escalations] + [t.due_at for t in late])
        key = (oldest.timestamp(), episode.id)
    elif upcoming and upcoming[0].due_at - now <= TODAY_WINDOW:
        bucket = TODAY
        reasons.append(_due_reason(definition, upcoming[0], now))
        key = (upcoming[0].due_at.timestamp(), episode.id)
    else:
        bucket = LATER
        if upcoming:
            reasons.append(_due_reason(definition, upcoming[0], now))
        key = (upcoming[0].due_at.timestamp() if upcoming else float("inf"), episode.id)
    state = definition.states.get(episode.state)
    tasks = [t for t in episode.tasks if t.status == OPEN and t.kind != "escalation"]
    if not reasons:
        reasons.append(_waiting_reason(definition, episode, len(tasks)))
    return Row(
        episode=episode,
        pathway_title=definition.title if definition else episode.pathway,
        state_label=state.label if state else episode.state,
        terminal=bool(state and state.terminal),
        bucket=bucket,
        days_in_state=whole_days(now - episode.state_entered_at),
        clocks=day_counts(definition, episode, now),
        next_timer=next_timer,
        next_timer_title=_title(definition, next_timer.rule_id) if next_timer else None,
        escalations=len(escalations),
        open_tasks=len(tasks),
        reasons=tuple(reasons),
        sort_key=key,
    )


def ordered(rows: list[Row]) -> dict[str, list[Row]]:
    """Rows by bucket, overdue → due within 24 h → the rest, each sorted most urgent first."""
    out: dict[str, list[Row]] = {b: [] for b in BUCKETS}
    for row in sorted(rows, key=lambda r: r.sort_key):
        out[row.bucket].append(row)
    return out


def whole_days(span: timedelta) -> int:
    return max(0, span.days)


def span_words(span: timedelta) -> str:
    """A duration as a coordinator says it: '3 days', '5 h', '20 min'."""
    seconds = abs(span.total_seconds())
    if seconds >= 86400:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h"
    return f"{max(1, int(seconds // 60))} min"


def _escalation_reason(task: Task, now: datetime) -> Reason:
    headline = task.text.split(":", 1)[0].strip()
    return Reason(f"{headline} by {span_words(now - task.created_at)}", task.rule_id, True)


def _late_timer_reason(definition: Definition, timer: Timer, now: datetime) -> Reason:
    title = _title(definition, timer.rule_id)
    return Reason(
        f"{title} — due {span_words(now - timer.due_at)} ago, not yet processed",
        timer.rule_id,
        True,
    )


def _due_reason(definition: Definition, timer: Timer, now: datetime) -> Reason:
    title = _title(definition, timer.rule_id)
    return Reason(f"{title} — in {span_words(timer.due_at - now)}", timer.rule_id, False)


def _waiting_reason(definition: Definition, episode: Episode, open_tasks: int) -> Reason:
    if definition.states.get(episode.state) and definition.is_terminal(episode.state):
        return Reason("Episode ended", None, False)
    if open_tasks:
        return Reason(
            f"{open_tasks} open task{'s' if open_tasks != 1 else ''} to complete", None, False
        )
    return Reason("Waiting for the next observation", None, False)


def _title(definition: Definition, rule_id: str) -> str:
    rule = definition.rules.get(rule_id)
    return rule.title if rule else rule_id
