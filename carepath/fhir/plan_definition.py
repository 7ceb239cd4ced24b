"""A pathway definition as a FHIR PlanDefinition, for systems that speak FHIR.

Why: hospitals exchange care protocols as FHIR ``PlanDefinition`` resources (clinical decision
support, order sets). This export lets such a system see the pathway's structure, criteria,
timing and citations; the definition file stays the source of truth (the export is one way).

The resource is FHIR **R4B** (4.3.0), validated by constructing
``fhir.resources.R4B.plandefinition.PlanDefinition``: fhir.resources 7 and later default to R5,
whose PlanDefinition differs, and most deployed servers speak R4/R4B. The resource says so in
``meta.tag``.

Shape: one action per state (its ``code`` is the state), holding one action per rule the state
runs (routes, orders on entry, checks) and per timer it sets. A rule's criterion is its
``condition`` (an expression in carepath's criterion language, rendered as text), its citations
are the action's ``documentation`` (the resource's ``relatedArtifact`` lists them all), a route's destination is a ``relatedAction`` to that state's action, and a
timer's delay is ``timingDuration`` in days. The TX rules, requests and close are actions of their
own, applying in every non-terminal state.
"""

from __future__ import annotations

from typing import Any

from pathway.criteria import Always, Compare, Known, Node, Not, RuleRef
from pathway.definition import Definition, Route, Rule
from pathway.diagram import timer_timing

FHIR_TAG = {
    "system": "urn:carepath:fhir-release",
    "code": "R4B",
    "display": "FHIR R4B (4.3.0); validated with fhir.resources.R4B",
}
LANGUAGE = "text/x-carepath-criterion"
UCUM = "http://unitsofmeasure.org"


def criterion_text(node: Node) -> str:
    """A criterion as one readable line: ``(a and b) or not (c)``."""
    if isinstance(node, Always):
        return "always"
    if isinstance(node, Compare):
        return node.label
    if isinstance(node, Known):
        return f"{node.name} is known"
    if isinstance(node, RuleRef):
        kind, _, name = node.rule_id.rpartition(":")
        return f"{kind or 'rule'} {name} ({criterion_text(node.target)})"  # type: ignore[arg-type]
    if isinstance(node, Not):
        return f"not ({criterion_text(node.child)})"
    joiner = " and " if type(node).__name__ == "All" else " or "
    parts = [criterion_text(c) for c in getattr(node, "children", ())]
    return "(" + joiner.join(parts) + ")" if len(parts) > 1 else "".join(parts)


def _id(name: str) -> str:
    """A FHIR id: letters, digits, '-' and '.' only."""
    return name.replace("_", "-")


def _citations(definition: Definition, refs: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"type": "citation", "label": ref, "citation": definition.references[ref]} for ref in refs
    ]


def _rule_action(
    definition: Definition, rule: Rule, *, guard: Node | None = None, to: str | None = None
) -> dict[str, Any]:
    action: dict[str, Any] = {"id": rule.id, "title": rule.title}
    if rule.action is not None:
        action["description"] = f"{rule.action.kind}: {rule.action.text}"
    conditions = [rule.criterion] + ([guard] if guard is not None else [])
    action["condition"] = [
        {
            "kind": "applicability",
            "expression": {"language": LANGUAGE, "expression": criterion_text(c)},
        }
        for c in conditions
        if not isinstance(c, Always)
    ] or None
    action["documentation"] = _citations(definition, rule.refs)  # R4B: an action cites here
    if to is not None:
        action["relatedAction"] = [{"actionId": _id(to), "relationship": "before-start"}]
        action["textEquivalent"] = f"→ {definition.states[to].label}"
    if rule.id in definition.timers:
        days = definition.timers[rule.id].days
        action["timingDuration"] = {"value": days, "unit": "days", "system": UCUM, "code": "d"}
        action["textEquivalent"] = f"{timer_timing(definition, rule.id)}" + (
            f" → {definition.states[to].label}" if to else ""
        )
    return {k: v for k, v in action.items() if v is not None}


def _route_actions(definition: Definition, route: Route) -> list[dict[str, Any]]:
    rules = definition.rules
    out = [_rule_action(definition, rules[r], guard=route.when, to=route.to) for r in route.rules]
    out += [_rule_action(definition, rules[r]) for r in route.also]
    return out


def _state_action(definition: Definition, name: str) -> dict[str, Any]:
    s, rules = definition.states[name], definition.rules
    subs = [a for route in s.routes for a in _route_actions(definition, route)]
    subs += [_rule_action(definition, rules[r]) for r in (*s.on_enter, *s.checks)]
    timers = [*s.timers, *(t for route in s.routes for t in route.timers)]
    for tid in dict.fromkeys(timers):
        subs.append(_rule_action(definition, rules[tid], to=definition.timers[tid].moves_to))
    seen: dict[str, int] = {}
    for sub in subs:  # a rule may act twice in a state (two routes); ids stay unique
        n = seen[sub["id"]] = seen.get(sub["id"], 0) + 1
        sub["id"] = f"{_id(name)}.{sub['id']}" + (f".{n}" if n > 1 else "")
    action: dict[str, Any] = {
        "id": _id(name),
        "title": s.label,
        "code": [{"coding": [{"system": "urn:carepath:state", "code": name}], "text": s.label}],
        "description": "terminal state" if s.terminal else None,
        "action": subs or None,
    }
    return {k: v for k, v in action.items() if v is not None}


def plan_definition(definition: Definition) -> dict[str, Any]:
    """The definition as a validated FHIR R4B PlanDefinition, as JSON-ready data."""
    from fhir.resources.R4B.plandefinition import PlanDefinition

    rules = definition.rules
    every_event = [
        a for route in definition.global_routes for a in _route_actions(definition, route)
    ]
    requests = [
        _rule_action(definition, rules[q.rule], to=q.to)
        | ({"description": "refused, always: never recommended"} if q.refused_always else {})
        for q in definition.requests.values()
    ]
    close = definition.close
    resource = {
        "resourceType": "PlanDefinition",
        "id": definition.id,
        "meta": {"tag": [FHIR_TAG]},
        "url": f"urn:carepath:definition:{definition.id}",
        "identifier": [{"system": "urn:carepath:definition-version", "value": definition.version}],
        "version": definition.version,
        "name": "".join(p[:1].upper() + p[1:] for p in definition.id.replace("_", "-").split("-")),
        "title": definition.title,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                    "code": "clinical-protocol",
                }
            ]
        },
        "status": "draft",
        "description": str(definition.document.get("source", definition.title)),
        "relatedArtifact": _citations(definition, tuple(definition.references)),
        "action": [
            {
                "id": "every-event",
                "title": "On every event, before anything else",
                "action": every_event,
            },
            *(_state_action(definition, name) for name in definition.states),
            {"id": "requests", "title": "Requests", "action": requests},
            _rule_action(definition, rules[close.rule], to=close.to)
            | {"description": "reasons: " + ", ".join(close.reasons)},
        ],
    }
    validated = PlanDefinition.model_validate(resource)
    return validated.model_dump(mode="json", exclude_none=True)


def definition_bundle(definition: Definition) -> dict[str, Any]:
    """The definition whole, as a validated R4B Bundle (type collection): its PlanDefinition,
    then one ``Measure`` per measure it declares (``carepath.fhir.measure``)."""
    from fhir.resources.R4B.bundle import Bundle

    from carepath.fhir.measure import measure_resources

    plan = plan_definition(definition)
    entries = [{"fullUrl": plan["url"], "resource": plan}]
    entries += [{"fullUrl": m["url"], "resource": m} for m in measure_resources(definition)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    return Bundle.model_validate(bundle).model_dump(mode="json", exclude_none=True)
