"""Scenario replay: run a scenario through the real use cases on a virtual clock.

Before each event the clock moves to that event's day and every timer due by then fires in due
order, exactly as the scheduler would fire them; then the event is applied. The result is the
output object of SCENARIOS.md, plus the list of expectations that failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from carepath.replay.scenario import Scenario
from pathway import usecases
from pathway.audit import verify_chain
from pathway.errors import InvalidScenario, PathwayError
from pathway.unit_of_work import InMemoryUnitOfWork, UnitOfWork
from pathway.usecases import Applied, DefinitionRegistry

ACTOR = "replay"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    output: dict[str, Any]
    failures: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def replay(
    scenario: Scenario,
    definitions: DefinitionRegistry,
    make_uow: Callable[[], UnitOfWork] = InMemoryUnitOfWork,
) -> ReplayResult:
    """Replay one scenario; raises InvalidScenario only if its patient cannot be opened."""
    uow = make_uow()
    start = scenario.start
    try:
        definition = definitions.current_for(scenario.pathway)
    except PathwayError as exc:
        raise InvalidScenario(f"{scenario.source}: pathway: {exc}") from None
    try:
        opened = usecases.open_episode(
            uow, definitions, scenario.patient, at=start, now=start, actor=ACTOR,
            pathway=scenario.pathway,
        )  # fmt: skip
    except PathwayError as exc:
        raise InvalidScenario(f"{scenario.source}: patient: {exc}") from None
    episode_id = opened.outcome.episode_id
    state = opened.outcome.state
    steps = []
    for index, event in enumerate(scenario.events):
        now = start + timedelta(days=event.day)
        rules: list[str] = []
        refused: list[str] = []
        transitions: list[dict[str, Any]] = []
        enrolled: list[dict[str, str]] = []
        timers_fired = []
        for applied in usecases.fire_due_timers(uow, definitions, now, episode_id=episode_id):
            decision = applied.decision
            timer = decision.timer_fired  # type: ignore[union-attr]
            timers_fired.append({"timer": timer.rule_id, "due_day": (timer.due_at - start).days})
            _collect(applied, rules, refused, transitions, enrolled)
            state = applied.outcome.state
        error = None
        try:
            applied = _apply(uow, definitions, episode_id, event.kind, event.value, now)
            if applied is not None:
                _collect(applied, rules, refused, transitions, enrolled)
                state = applied.outcome.state
        except PathwayError as exc:
            error = {"type": type(exc).__name__, "message": exc.message}
        step = {
            "step": index,
            "day": event.day,
            "kind": event.kind,
            "state": state,
            "rules": rules,
            "refused": refused,
            "error": error,
            "timers_fired": timers_fired,
            "transitions": transitions,
        }
        if enrolled:
            step["enrolled"] = enrolled
        steps.append(step)
    with uow:
        episode = uow.get_episode(episode_id)
        check = verify_chain(
            episode_id,
            uow.audit_records(episode_id),
            (episode.version, episode.audit_hash),
            key=uow.audit_key,
            columns=not isinstance(uow, InMemoryUnitOfWork),  # stored rows only: see verify_chain
        )
    output = {
        "scenario": scenario.name,
        "definition": {"id": definition.id, "version": definition.version},
        "steps": steps,
        "final_state": episode.state,
        "audit_verified": check.ok,
    }
    return ReplayResult(output, tuple(check_expectations(scenario, steps)))


def _apply(
    uow: UnitOfWork,
    definitions: DefinitionRegistry,
    episode_id: str,
    kind: str,
    value: Any,
    now: Any,
) -> Applied | None:
    if kind == "observe":
        return usecases.observe(uow, definitions, episode_id, value, at=now, now=now, actor=ACTOR)
    if kind == "request":
        return usecases.request(uow, definitions, episode_id, value, at=now, now=now, actor=ACTOR)
    if kind == "close":
        return usecases.close(uow, definitions, episode_id, value, at=now, now=now, actor=ACTOR)
    return None  # advance: time passing only


def _collect(
    applied: Applied,
    rules: list[str],
    refused: list[str],
    transitions: list[dict[str, Any]],
    enrolled: list[dict[str, str]],
) -> None:
    decision = applied.decision
    if decision is None:
        return
    if applied.enrolled:
        enrolled.extend({"pathway": p, "rule": r} for p, r in applied.enrolled)
    if decision.fired:
        rules.extend([f.rule_id for f in decision.fired])
    if decision.refused:
        refused.extend([r.firing.rule_id for r in decision.refused])
    if decision.transitions:
        transitions.extend(
            [{"from": t.source, "to": t.dest, "rules": list(t.rules)} for t in decision.transitions]
        )


def check_expectations(scenario: Scenario, steps: Sequence[dict[str, Any]]) -> list[str]:
    """Every expectation not met, said as 'step N: expected …, got …'."""
    failures = []
    for x in scenario.expect:
        step = steps[x.step]
        if x.state is not None and step["state"] != x.state:
            failures.append(f"step {x.step}: expected state {x.state!r}, got {step['state']!r}")
        missing = [r for r in x.rules if r not in step["rules"]]
        if missing:
            failures.append(
                f"step {x.step}: expected rules {missing} to fire, fired {step['rules']}"
            )
        missing = [r for r in x.refused if r not in step["refused"]]
        if missing:
            failures.append(
                f"step {x.step}: expected {missing} to refuse, refused {step['refused']}"
            )
    return failures


def replay_many(
    scenarios: Sequence[Scenario],
    definitions: DefinitionRegistry,
    make_uow: Callable[[], UnitOfWork] = InMemoryUnitOfWork,
    progress: Callable[[int, int], None] | None = None,
) -> list[ReplayResult]:
    """Replay scenarios in order in this process; ``progress(done, total)`` after each."""
    if progress is None:
        return [replay(s, definitions, make_uow) for s in scenarios]
    results = []
    for s in scenarios:
        results.append(replay(s, definitions, make_uow))
        progress(len(results), len(scenarios))
    return results


def replay_files(
    paths: Sequence[str], definitions: DefinitionRegistry, workers: int | None = None
) -> tuple[list[bytes], list[str], int]:
    """Load and replay files on the in-memory unit of work: (JSON outputs, failures, exit code).

    A large cohort is split over the machine's cores; each worker parses, replays and
    serialises its share, so only bytes cross process boundaries. Any file that is not a
    scenario raises InvalidScenario and nothing is printed.
    """
    workers = workers if workers is not None else (os.cpu_count() or 1)
    global _POOL_DEFINITIONS
    _POOL_DEFINITIONS = definitions
    if workers <= 1 or len(paths) < 200:
        parts = [_replay_chunk(list(paths))]
    else:
        from carepath.replay.workers import in_workers

        size = max(1, -(-len(paths) // (workers * 4)))
        chunks = [list(paths[i : i + size]) for i in range(0, len(paths), size)]
        parts = list(in_workers(_replay_chunk, chunks, workers))
    outputs: list[bytes] = []
    failures: list[str] = []
    code = 0
    for chunk_outputs, chunk_failures, chunk_code in parts:
        outputs.extend(chunk_outputs)
        failures.extend(chunk_failures)
        code = max(code, chunk_code)
    return outputs, failures, code


_POOL_DEFINITIONS: DefinitionRegistry | None = None


def _replay_chunk(paths: list[str]) -> tuple[list[bytes], list[str], int]:
    from carepath.replay.scenario import load_scenario

    definitions = _POOL_DEFINITIONS
    assert definitions is not None
    outputs, failures, code = [], [], 0
    for path in paths:
        result = replay(load_scenario(path), definitions)
        outputs.append(orjson.dumps(result.output, option=orjson.OPT_INDENT_2))
        failures.extend(f"{result.output['scenario']}: {f}" for f in result.failures)
        code = max(code, result.exit_code)
    return outputs, failures, code
