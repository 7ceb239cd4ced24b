"""What the OpenAPI schema says of the loaded pathways: each one's facts, actions and close
reasons, so that a client (or schemathesis) reading the schema sends what the pathways accept.

The command bodies are one model for every pathway; the schema's ``facts`` lists the facts of
every loaded pathway (a fact two pathways share with different rules is ``anyOf`` both), and
``x-pathways`` says which pathway has which facts, actions and reasons. A value the schema
admits can still be refused by the episode's own pathway or state: that is a documented 422.
"""

from __future__ import annotations

from typing import Any

from pathway.usecases import DefinitionRegistry
from pathway.vocabulary import FactSpec


def fact_schema(spec: FactSpec) -> dict[str, Any]:
    """The JSON schema of one fact's values, as ``FactSpec.validate`` accepts them."""
    out: dict[str, Any]
    if spec.kind == "boolean":
        out = {"type": "boolean"}
    elif spec.kind in ("integer", "number"):
        out = {"type": spec.kind, "minimum": spec.minimum, "maximum": spec.maximum}
    elif spec.kind == "enum":
        out = {"type": "string", "enum": list(spec.values)}
    elif spec.kind == "list":
        out = {
            "type": "array",
            "items": {"type": "string", "enum": list(spec.values)},
            "uniqueItems": True,
        }
        if spec.min_items is not None:
            out["minItems"] = spec.min_items
        if spec.max_items is not None:
            out["maxItems"] = spec.max_items
    else:  # date
        out = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
    out["description"] = (spec.label or spec.name) + f": {spec.expected()}"
    return out


def pathway_vocabularies(definitions: DefinitionRegistry) -> dict[str, Any]:
    """Per current pathway: its facts, request actions and close reasons."""
    out: dict[str, Any] = {}
    for d in definitions.currents():
        out[d.id] = {
            "facts": sorted(d.vocabulary.facts),
            "actions": sorted(d.requests),
            "close_reasons": list(d.close.reasons),
        }
    return out


def facts_schema(definitions: DefinitionRegistry, only: str | None = None) -> dict[str, Any]:
    """The facts of every current pathway (or of ``only``)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for d in definitions.currents():
        if only is not None and d.id != only:
            continue
        for name, spec in d.vocabulary.facts.items():
            schema = fact_schema(spec)
            if schema not in by_name.setdefault(name, []):
                by_name[name].append(schema)
    properties = {n: s[0] if len(s) == 1 else {"anyOf": s} for n, s in sorted(by_name.items())}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def describe_pathways(schema: dict[str, Any], definitions: DefinitionRegistry) -> None:
    """Write the pathways' facts, actions and reasons into the generated ``schema``."""
    components = schema.get("components", {}).get("schemas", {})
    vocab = pathway_vocabularies(definitions)
    facts = facts_schema(definitions)
    actions = sorted({a for v in vocab.values() for a in v["actions"]})
    reasons = sorted({r for v in vocab.values() for r in v["close_reasons"]})
    for name in ("OpenEpisode", "Observe"):
        props = components.get(name, {}).get("properties", {})
        if "facts" in props:
            description = props["facts"].get("description", "")
            props["facts"] = {**facts, "description": description}
    for name, member, values in (
        ("RequestAction", "action", actions),
        ("Close", "reason", reasons),
    ):
        props = components.get(name, {}).get("properties", {})
        if member in props:
            props[member] = {**props[member], "enum": values}
            props[member].pop("pattern", None)
    if "OpenEpisode" in components:
        components["OpenEpisode"] = open_episode_schema(components["OpenEpisode"], definitions)
    worklist = schema.get("paths", {}).get("/api/episodes", {}).get("get", {})
    states = sorted({n for v in definitions.versions() for n in definitions.get(v).states})
    for parameter in worklist.get("parameters", ()):
        values = {"state": states, "pathway": sorted(vocab)}.get(parameter["name"])
        if values is not None:
            items = {"type": "string", "enum": values}
            parameter["schema"] = {"anyOf": [{"type": "array", "items": items}, {"type": "null"}]}
    schema.setdefault("info", {})["x-pathways"] = vocab


def open_episode_schema(base: dict[str, Any], definitions: DefinitionRegistry) -> dict[str, Any]:
    """Opening takes the facts of the pathway it names (the default one's without a name): one
    variant per pathway, so that the schema admits no fact the chosen pathway lacks."""
    variants = []
    default = definitions.current.id
    for d in definitions.currents():
        named = {"type": "string", "enum": [d.id]}
        pathway = {"anyOf": [named, {"type": "null"}]} if d.id == default else named
        props = {**base["properties"], "pathway": pathway}
        props["facts"] = {**facts_schema(definitions, d.id), "description": f"Facts of {d.id}."}
        required = [*base.get("required", ()), *([] if d.id == default else ["pathway"])]
        variants.append({**base, "properties": props, "required": required, "title": d.id})
    return {"title": base.get("title", "OpenEpisode"), "anyOf": variants}
