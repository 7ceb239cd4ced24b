"""A decision under construction: a private copy of the episode plus everything that happened.

The engine (``pathway.engine``) decides *which* rules apply to an event; ``DecisionInProgress`` is
how the effects are applied and recorded: observing facts, settling routes (TX check first,
then the state's routes while a transition applies), firing rules with their evidence, moving
along the definition's graph, entering states (their rules and timers), setting and cancelling
timers, opening and closing tasks. The migration planner uses it too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pathway.criteria import Context, Evidence
from pathway.definition import Definition, Route, Rule
from pathway.engine_plan import Plan, RoutePlan, plan_of, route_plan
from pathway.errors import TransitionNotAllowed
from pathway.model import (
    CANCELLED,
    OPEN,
    PENDING,
    RESOLVED,
    Decision,
    Episode,
    Event,
    Facts,
    FactValue,
    Observation,
    Refusal,
    RuleFiring,
    Task,
    Timer,
    Transition,
)


def clock_start(ep: Episode, clock: str) -> datetime | None:
    """When one of the definition's clocks (``CLOCKS``) started for the episode; None for
    care not started yet."""
    if clock == "opening":
        return ep.opened_at
    if clock == "state_entry":
        return ep.state_entered_at
    return ep.care_started_at


def derived_values(definition: Definition, ep: Episode, at: datetime) -> dict[str, Any]:
    """The definition's derived values for an episode at clinical time ``at``; a value whose
    clock has not started (care not begun, a date fact unknown) is absent, i.e. unknown."""
    out: dict[str, Any] = {}
    derive_into(out, definition, ep, at)
    return out


def derive_into(out: dict[str, Any], definition: Definition, ep: Episode, at: datetime) -> None:
    """``derived_values`` written into ``out`` (a context's values: no dict made and merged)."""
    for name, kind, arg in definition.derived_plan:
        if kind == "review":
            out[name] = ep.remembered.get(arg)  # type: ignore[arg-type]
        elif kind == "date":
            fv = ep.facts.get(arg)  # type: ignore[arg-type]
            if fv is not None:
                day = at.date() if at.tzinfo is UTC else at.astimezone(UTC).date()
                out[name] = (day - date.fromisoformat(fv.value)).days
        else:  # clock_start, inlined: this runs on every evaluation
            if kind == "opening":
                start: datetime | None = ep.opened_at
            elif kind == "state_entry":
                start = ep.state_entered_at
            else:
                start = ep.care_started_at
            if start is not None:
                out[name] = (at - start).days  # floored, as whole days since the clock


class DecisionInProgress:
    """The decision under construction: a private copy of the episode plus what happened."""

    __slots__ = (
        "definition",
        "plan",
        "episode",
        "decision",
        "version",
        "event_facts",
        "observation_id",
        "timers",
        "tasks",
        "_ctx",
        "_open_rules",
        "_values",
        "key_suffix",
    )

    def __init__(
        self, definition: Definition, episode: Episode, decision: Decision, version: int
    ) -> None:
        self.definition = definition
        self.plan: Plan = plan_of(definition)
        self.episode = episode
        self.decision = decision
        self.version = version
        self.event_facts: dict[str, Any] = {}
        self.observation_id: str | None = None
        self.timers = list(episode.timers)  # written back to the episode by finish()
        self.tasks = list(episode.tasks)
        self._ctx: Context | None = None  # valid until facts change or care starts
        self._open_rules: set[str] | None = None  # rules with an open task
        self._values: dict[str, Any] | None = None  # fact → value, kept up to date by observe
        self.key_suffix = f"@{version}"  # the keys of the tasks and timers it makes: rule id + this

    @classmethod
    def start(cls, definition: Definition, episode: Episode, event: Event) -> DecisionInProgress:
        e = episode
        copy = Episode(  # positional, in field order: a decision's cheapest copy
            e.id, e.definition_version, e.state, e.opened_at, e.state_entered_at,
            e.care_started_at, e.facts, e.timers, e.tasks, e.remembered, e.closed_reason,
            e.version + 1, e.patient_ref, e.label, e.audit_hash, e.links, e.owner, e.appointment,
        )  # fmt: skip
        return cls(definition, copy, Decision(event, episode, copy), episode.version + 1)

    # -- reading ---------------------------------------------------------------------------

    def context(self) -> Context:
        if self._ctx is None:
            self._ctx = self._build_context()
        return self._ctx

    def _build_context(self) -> Context:
        ep, at = self.episode, self.decision.event.at
        values = self._values
        if values is None:
            values = self._values = {name: fv.value for name, fv in ep.facts.items()}
        # derived into the same dict, not a copy: no fact has a derived value's name, each
        # build writes every derived value that is known (and one known stays known), and the
        # context this replaces is never read again
        derive_into(values, self.definition, ep, at)
        return Context.of(values, ep.facts, self.event_facts, self.observation_id, ep.state)

    # -- observations ----------------------------------------------------------------------

    def observe(self, facts: dict[str, Any], event: Event, source: str) -> None:
        ep, at = self.episode, event.at
        obs = Observation(event.event_id, facts, at, event.actor, source)
        self.decision.observation = obs
        self.event_facts, self.observation_id = facts, obs.id
        before = ep.facts
        merged = Facts(before)
        merged.tx_clear = None
        for name, value in facts.items():
            merged[name] = FactValue(value, obs.id, at)
        ep.facts = merged
        if self._values is not None:
            self._values.update(facts)
        self._ctx = None
        dated = self.definition.dated_timers
        newly_known = []
        for name in facts if dated else ():  # in the event's order: timers set in that order
            if name not in dated:
                continue
            old = before.get(name)
            if old is None:
                newly_known.append(name)
            elif old.value != facts[name]:
                self._retime(name)
        states = self.plan.states
        was_review = states[ep.state].sdef.review
        visited = [ep.state]
        clear = before.tx_clear if type(before) is Facts else None  # TX known false on it?
        self._settle(visited, clear is not None and self._tx_still_clear(clear, facts))
        if newly_known and not states[ep.state].terminal:
            for name in newly_known:
                for tid in dated[name]:
                    if self.definition.timers[tid].set_on_known:
                        self.set_timer(tid)
        self._review(visited, was_review)

    def _review(self, visited: list[str], was_review: bool) -> None:
        """After an observation settled: the checks of the states it visited, the review's
        values remembered, the escalations it resolves. The context is the one before the
        values are remembered, built only when a check or an open escalation reads it (firing
        a check leaves it as it was)."""
        ep, states = self.episode, self.plan.states
        ctx = self._ctx  # (a method of its own: in observe, mypy and mypyc think it None)
        ended = states[ep.state].terminal
        fired: set[str] | None = None
        observed = self.event_facts
        for state in () if ended else visited:  # a transferred episode needs no review task
            splan = states[state]
            if splan.terminal or not splan.checks:
                continue
            for rule, need in splan.checks_need:
                if need is not None and need.isdisjoint(observed):
                    continue  # it holds only on a fact this observation did not record
                if ctx is None:
                    ctx = self.context()
                if fired is None:
                    fired = {f.rule_id for f in self.decision.fired}
                if rule.id in fired:
                    continue
                if rule.criterion.test(ctx):
                    self.fire(rule, rule.criterion.explain(ctx, True))
                    fired.add(rule.id)  # fired (or once-only and fired before: again a no-op)
        if ctx is None:
            for task in self.tasks:  # (kind first: most tasks are open, few are escalations)
                if task.kind == "escalation" and task.status == OPEN:
                    ctx = self.context()
                    break
        if was_review and self.definition.remembered:
            ep.remembered = {f: ep.fact(f) for f in self.definition.remembered}
        if ctx is not None:
            self._resolve_escalations(ctx)

    def _retime(self, fact: str) -> None:
        """A corrected date fact re-times every pending timer anchored on it (never into the
        past of this event); fired timers stay fired and no transition is undone."""
        at, dated = self.decision.event.at, self.definition.dated_timers[fact]
        for i, t in enumerate(self.timers):
            if t.status != PENDING or t.rule_id not in dated:
                continue
            spec = self.definition.timers[t.rule_id]
            nominal = spec.nominal_due(t.set_at or t.due_at, self.episode.facts)
            due = max(nominal, at) if nominal is not None else t.due_at
            if due == t.due_at:
                continue
            self.set_timer_status(i, CANCELLED)
            new = Timer(
                f"{t.rule_id}@{self.version}", t.rule_id, due, PENDING, t.state,
                self.version * 100 + len(self.decision.timers_set), t.set_at,
            )  # fmt: skip
            self.decision.timers_set.append(new)
            self.decision.timers_retimed.append((t, new))
            self.timers.append(new)

    def _tx_still_clear(self, clear: str, facts: dict[str, Any]) -> bool:
        """Whether the TX check is known false on the facts before this observation (the
        engine evaluated it on that very map under version ``clear``, ``Facts.tx_clear``) and
        reads none of ``facts`` (this observation's): then it is false on the merged facts
        too, and need not be evaluated again."""
        reads = self.plan.global_reads
        if reads is None or clear != self.definition.version:
            return False
        for name in facts:
            if name in reads:
                return False
        return True

    def _settle(self, visited: list[str], tx_clear: bool = False) -> None:
        """TX check (unless ``tx_clear``: known false), then the state's routes, for as long
        as a transition applies."""
        plan = self.plan
        if plan.global_routes:
            if not tx_clear:
                ctx = self.context()
                for route in plan.global_routes:
                    if route.applies(ctx):
                        self._apply(route, ctx)
                        visited.append(self.episode.state)
                        return
            facts = self.episode.facts
            if plan.global_reads is not None and type(facts) is Facts:  # false on these facts
                facts.tx_clear = self.definition.version  # (the next observation reads it)
        states, ep = plan.states, self.episode
        for _ in range(len(states)):
            splan = states[ep.state]
            if splan.terminal or not splan.routes:
                return
            before = ep.state
            ctx = self._ctx or self.context()
            for route in splan.routes:  # the first that applies decides
                if route.applies(ctx):
                    self._apply(route, ctx)
                    break
            else:
                return
            if route.to is None or ep.state == before:
                return
            visited.append(ep.state)

    def _take(self, route: Route, ctx: Context) -> bool:
        """Apply a route of the definition if it applies (the migration's transfer)."""
        return self._route(route_plan(self.definition, route), ctx)

    def _route(self, route: RoutePlan, ctx: Context) -> bool:
        """Apply the route if it applies: fire its rules, move, set its timers."""
        if not route.applies(ctx):
            return False
        self._apply(route, ctx)
        return True

    def _apply(self, route: RoutePlan, ctx: Context) -> None:
        """Apply a route that applies (``route.applies``): fire the rules that hold, move, set
        its timers."""
        when, rules = route.when, route.rules
        holding: tuple[Rule, ...] = rules
        if len(rules) > 1:
            holding = tuple([rule for rule in rules if rule.criterion.test(ctx)])
        if when is not None:
            guard = when.explain(ctx, True)
            for rule in holding:
                self.fire(rule, rule.criterion.explain(ctx, True) + guard)
        else:
            for rule in holding:
                self.fire(rule, rule.criterion.explain(ctx, True))
        for rule in route.also:
            if rule.criterion.test(ctx):
                self.fire(rule, rule.criterion.explain(ctx, True))
        if route.to is not None:
            ids = route.ids if holding is rules else tuple([r.id for r in holding])
            self.move(route.to, route.trigger, ids)
        for tid in route.timers:
            self.set_timer(tid)

    def _resolve_escalations(self, ctx: Context) -> None:
        rules = self.definition.rules
        for i, task in enumerate(self.tasks):
            if task.kind == "escalation" and task.status == OPEN:
                rule = rules[task.rule_id]
                if rule.resolves_when_false and not rule.criterion.test(ctx):
                    self.set_task_status(i, RESOLVED)

    # -- effects ---------------------------------------------------------------------------

    def fire(self, rule: Rule, evidence: list[Evidence], state: str | None = None) -> None:
        d, rule_id = self.decision, rule.id
        if rule.once:  # (loops here and below: cheaper than any() over a generator)
            for t in self.tasks:
                if t.rule_id == rule_id:
                    return  # once per episode: it has fired before
        d.fired.append(RuleFiring(rule_id, rule.title, rule.citations, rule.refs, tuple(evidence)))
        action = rule.action
        if action is None:
            return
        open_rules = self._open_rules
        if open_rules is None:
            open_rules = self._open_rules = (
                {t.rule_id for t in self.tasks if t.status == OPEN} if self.tasks else set()
            )
        if rule_id in open_rules:
            return  # already asked for and not yet done
        superseded_by = self.plan.superseded_by.get(rule_id)
        if superseded_by is not None:
            for f in d.fired:
                if f.rule_id in superseded_by:
                    return  # a stronger rule's task replaces this one's
        if rule.supersedes:  # a stronger rule withdraws a weaker one's task of this decision
            self._withdraw(rule.supersedes, open_rules)
        open_rules.add(rule_id)
        kind = action.kind
        task = Task(  # positional, in field order
            rule_id + self.key_suffix, rule_id, kind, action.text, d.event.at, OPEN,
            state if kind == "escalation" else None,
        )  # fmt: skip
        d.tasks_opened.append(task)
        self.tasks.append(task)

    def _withdraw(self, rules: tuple[str, ...], open_rules: set[str]) -> None:
        """Take back the tasks this decision opened for ``rules`` (superseded by a stronger one)."""
        opened = self.decision.tasks_opened
        withdrawn = [t for t in opened if t.rule_id in rules]
        if not withdrawn:
            return  # none opened by this decision: the common case
        opened[:] = [t for t in opened if t.rule_id not in rules]
        gone = {id(t) for t in withdrawn}  # this decision's own tasks, not earlier ones
        self.tasks[:] = [t for t in self.tasks if id(t) not in gone]
        for t in withdrawn:
            open_rules.discard(t.rule_id)

    def refuse(self, action: str, rule: Rule, evidence: list[Evidence]) -> None:
        firing = RuleFiring(rule.id, rule.title, rule.citations, rule.refs, tuple(evidence))
        self.decision.refused.append(Refusal(action, firing))

    def move(self, dest: str, trigger: str, rules: tuple[str, ...]) -> None:
        ep = self.episode
        source = ep.state
        if (trigger, source, dest) not in self.plan.edges:  # the graph's allows(), inlined
            raise TransitionNotAllowed(
                f"definition {self.definition.version} has no edge {trigger}: {source} → {dest}",
                episode_id=ep.id,
            )
        self.decision.transitions.append(Transition(source, dest, rules))
        for i, timer in enumerate(self.timers):
            if timer.status == PENDING and timer.state == source:
                self.set_timer_status(i, CANCELLED)
        for i, task in enumerate(self.tasks):
            if task.status == OPEN and task.state == source:
                self.set_task_status(i, CANCELLED)
        self.enter(dest)

    def enter(self, state: str) -> None:
        ep, at = self.episode, self.decision.event.at
        ep.state, ep.state_entered_at = state, at
        self._ctx = None  # criteria may read the state and the days in it
        splan = self.plan.states[state]
        sdef = splan.sdef
        if sdef.terminal:
            for i, timer in enumerate(self.timers):
                if timer.status == PENDING:
                    self.set_timer_status(i, CANCELLED)
            for i, task in enumerate(self.tasks):
                if task.status == OPEN and task.kind == "escalation":
                    self.set_task_status(i, CANCELLED)
            return
        if sdef.starts_care:
            if ep.care_started_at is not None:
                return  # back in care: care day and its timeline go on
            ep.care_started_at = at
            self._ctx = None
        ctx = None  # built only for a rule with a criterion (most on-entry rules have none)
        for rule, tested in splan.on_enter:
            if not tested:
                self.fire(rule, [])
                continue
            criterion = rule.criterion
            if ctx is None:
                ctx = self.context()
            if criterion.test(ctx):
                self.fire(rule, criterion.explain(ctx, True))
        for tid in splan.timers:
            self.set_timer(tid)

    def set_timer(self, timer_id: str) -> None:
        """Set a timer from now; one anchored on an unknown date fact is not set, and one
        whose time has passed is due now (it fires next, never before this event)."""
        spec, delay = self.plan.timers[timer_id]
        d = self.decision
        at = d.event.at
        if spec.once:
            for t in self.timers:
                if t.rule_id == timer_id:
                    return
        due = at + delay if delay is not None else spec.nominal_due(at, self.episode.facts)
        if due is None:
            return
        timers_set = d.timers_set
        timer = Timer(  # positional, in field order; the due time is max(due, at)
            timer_id + self.key_suffix, timer_id, at if at > due else due, PENDING,
            self.episode.state if spec.state_bound else None,
            self.version * 100 + len(timers_set), at,
        )  # fmt: skip
        timers_set.append(timer)
        self.timers.append(timer)

    def set_timer_status(self, index: int, status: str) -> None:
        t = self.timers[index]
        updated = Timer(t.key, t.rule_id, t.due_at, status, t.state, t.order, t.set_at)
        self.timers[index] = updated
        if status == CANCELLED:
            self.decision.timers_cancelled.append(updated)
        else:
            self.decision.timer_fired = updated

    def set_task_status(self, index: int, status: str, note: str | None = None) -> None:
        t = self.tasks[index]
        updated = Task(t.key, t.rule_id, t.kind, t.text, t.created_at, status, t.state, note)
        self.tasks[index] = updated
        self.decision.tasks_closed.append(updated)
        if self._open_rules is not None:
            self._open_rules.discard(t.rule_id)

    def finish(self) -> Decision:
        self.episode.timers = tuple(self.timers)
        self.episode.tasks = tuple(self.tasks)
        return self.decision
