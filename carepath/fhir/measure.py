"""A definition's declared measures as FHIR R4B ``Measure`` resources (proportion scoring).

Why: a ``MeasureReport`` (``carepath.fhir.measure_report``) names the ``Measure`` it reports on
by canonical URL; exporting the measures with the definition lets a FHIR system read what each
number means (its numerator and denominator in words, its citations) without carepath's files.
The populations' ``criteria`` are carepath's own (language ``text/x-carepath-measure``): the
declaration stays the source of truth, computed by ``carepath measures``.
"""

from __future__ import annotations

from typing import Any

from carepath.fhir.measure_report import MEASURE_POPULATION, measure_url

LANGUAGE = "text/x-carepath-measure"
SCORING = "http://terminology.hl7.org/CodeSystem/measure-scoring"
IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"


def _words(measure: Any, part: str) -> str:
    """A population's description: the declaration's own words for it when it has them
    (``numerator``/``denominator`` as text, or ``numerator_text``), else the description."""
    for name in (f"{part}_text", part):
        value = getattr(measure, name, None)
        if isinstance(value, str) and value.strip():
            return value
        text = getattr(value, "text", None) or getattr(value, "description", None)
        if isinstance(text, str) and text.strip():
            return text
    return str(measure.description)


def _population(measure: Any, code: str, words: str) -> dict[str, Any]:
    return {
        "code": {"coding": [{"system": MEASURE_POPULATION, "code": code}]},
        "description": words,
        "criteria": {"language": LANGUAGE, "expression": f"{measure.id}.{code}"},
    }


def _citations(definition: Any, refs: tuple[str, ...]) -> list[dict[str, Any]]:
    known = definition.references
    return [
        {"type": "citation", "label": ref, "citation": known[ref]}
        if ref in known
        else {"type": "citation", "label": ref}
        for ref in refs
    ]


def measure_resource(definition: Any, measure: Any) -> dict[str, Any]:
    """One declared measure as a validated R4B Measure, as JSON-ready data."""
    from fhir.resources.R4B.measure import Measure

    from carepath.fhir.plan_definition import FHIR_TAG

    denominator = _words(measure, "denominator")
    resource = {
        "resourceType": "Measure",
        "id": f"{definition.id}-{measure.id}"[:64],
        "meta": {"tag": [FHIR_TAG]},
        "url": measure_url(definition.id, measure.id),
        "version": definition.version,
        "name": measure.id.replace("-", "_"),
        "title": measure.title,
        "status": "draft",
        "description": str(measure.description),
        "scoring": {"coding": [{"system": SCORING, "code": "proportion"}]},
        "improvementNotation": {"coding": [{"system": IMPROVEMENT, "code": "increase"}]},
        "relatedArtifact": _citations(definition, tuple(measure.refs))
        + [
            {
                "type": "depends-on",
                "label": "pathway",
                "resource": f"urn:carepath:definition:{definition.id}",
            }
        ],
        "group": [
            {
                "code": {"text": measure.id},
                "population": [
                    _population(measure, "initial-population", denominator),
                    _population(measure, "denominator", denominator),
                    _population(measure, "numerator", _words(measure, "numerator")),
                ],
            }
        ],
    }
    return Measure.model_validate(resource).model_dump(mode="json", exclude_none=True)


def measure_resources(definition: Any) -> list[dict[str, Any]]:
    """Every measure the definition declares (none before measures are declared)."""
    return [measure_resource(definition, m) for m in getattr(definition, "measures", ())]
