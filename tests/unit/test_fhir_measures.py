"""The measures as FHIR R4B: MeasureReports in a Bundle, and the definitions' Measures.

The reports are the measures fake's hand-written JSON-contract objects (both pathways, every
band, a zero denominator); each resource is read back with ``fhir.resources.R4B``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.measure import Measure
from fhir.resources.R4B.measurereport import MeasureReport
from typer.testing import CliRunner

from carepath.fhir.measure import measure_resources
from carepath.fhir.measure_report import measure_report_bundle, measure_url
from carepath.fhir.plan_definition import definition_bundle
from pathway.definition import load_definition
from tests.support import measures_fake as fake

AS_OF = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"


def fls_definition():
    from carepath.bootstrap import current_definitions

    return next(d for d in current_definitions() if d.id == fake.FLS)


def reports() -> list[dict]:
    return [fake.report(fake.L1L2, AS_OF), fake.report(fake.FLS, AS_OF)]


def counts(group: dict) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}


def test_the_bundle_is_a_collection_of_one_r4b_measure_report_per_measure() -> None:
    bundle = measure_report_bundle(reports())
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    assert len(bundle["entry"]) == 6 + 8
    for entry in bundle["entry"]:
        report = MeasureReport.model_validate(entry["resource"]).model_dump(mode="json")
        assert report["status"] == "complete"
        assert report["type"] == "summary"
        assert report["date"].startswith("2026-03-01T23:59:59")


def test_each_report_counts_its_populations_and_scores_the_ratio() -> None:
    bundle = measure_report_bundle(reports())
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    dxa = by_id["fracture-liaison-FLS-KPI-DXA-12W"]
    assert dxa["measure"] == measure_url(fake.FLS, "FLS-KPI-DXA-12W") + "|fracture-liaison@fake"
    assert dxa["period"] == {"start": "2025-10-01", "end": "2026-02-28"}
    group = dxa["group"][0]
    assert counts(group) == {"initial-population": 43, "denominator": 43, "numerator": 17}
    assert group["measureScore"]["value"] == round(17 / 43, 6)
    stratum = group["stratifier"][0]["stratum"][0]
    assert stratum["value"]["text"] == "2025-10"
    assert counts(stratum) == {"initial-population": 9, "denominator": 9, "numerator": 3}
    assert dxa["extension"] == [{"url": "urn:carepath:measure-band", "valueCode": "red"}]


def test_a_zero_denominator_has_no_score_and_no_band() -> None:
    bundle = measure_report_bundle(reports())
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    group = by_id["l1-l2-compression-fracture-M-DECISION-3M"]["group"][0]
    assert counts(group) == {"initial-population": 0, "denominator": 0, "numerator": 0}
    assert "measureScore" not in group
    assert "extension" not in by_id["l1-l2-compression-fracture-M-DECISION-3M"]


def test_a_report_without_months_spans_its_as_of_day() -> None:
    empty = fake.report(fake.FLS, AS_OF) | {"from": None, "to": None}
    report = measure_report_bundle([empty])["entry"][0]["resource"]
    assert report["period"] == {"start": "2026-03-01", "end": "2026-03-01"}


def test_no_reports_make_an_empty_valid_bundle() -> None:
    assert measure_report_bundle([]) == {"resourceType": "Bundle", "type": "collection"}


def test_each_declared_measure_exports_as_an_r4b_proportion_measure() -> None:
    definition = fake.with_measures(load_definition())
    measures = measure_resources(definition)
    assert [m["name"] for m in measures] == [
        "M_WORKUP_3D", "M_REVIEW_6W", "M_OSTEO_6W", "M_DXA_6W", "M_DECISION_3M", "M_REIMAGE_8W",
    ]  # fmt: skip
    dxa = Measure.model_validate(measures[3]).model_dump(mode="json", exclude_none=True)
    assert dxa["url"] == measure_url(definition.id, "M-DXA-6W")
    assert dxa["version"] == definition.version
    assert dxa["title"] == "DXA by care day 42"
    assert dxa["scoring"]["coding"][0]["code"] == "proportion"
    codes = [p["code"]["coding"][0] for p in dxa["group"][0]["population"]]
    assert {c["system"] for c in codes} == {POPULATION}
    assert [c["code"] for c in codes] == ["initial-population", "denominator", "numerator"]
    assert all(p["description"] for p in dxa["group"][0]["population"])
    cited = dxa["relatedArtifact"][0]
    assert cited["type"] == "citation" and cited["label"] == "3"
    assert cited["citation"] == definition.references["3"]


def test_population_descriptions_are_the_declarations_own_words() -> None:
    definition = fake.with_measures(load_definition())
    measure = definition.measures[0]
    measure.numerator_text = "left workup within 3 days"
    measure.denominator_text = "episodes that entered workup"
    populations = measure_resources(definition)[0]["group"][0]["population"]
    assert [p["description"] for p in populations] == [
        "episodes that entered workup", "episodes that entered workup",
        "left workup within 3 days",
    ]  # fmt: skip


def test_the_definition_bundle_holds_the_plan_definition_then_its_measures() -> None:
    definition = fake.with_measures(fls_definition())
    bundle = definition_bundle(definition)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["PlanDefinition"] + ["Measure"] * 8
    assert bundle["entry"][1]["fullUrl"] == measure_url("fracture-liaison", "FLS-KPI-ASSESSED-12W")


def test_a_definition_without_measures_exports_its_plan_definition_alone() -> None:
    bare = fake.WithMeasures(load_definition(), ())
    kinds = [e["resource"]["resourceType"] for e in definition_bundle(bare)["entry"]]
    assert kinds == ["PlanDefinition"]


def test_the_shipped_definitions_measures_export_as_valid_measures() -> None:
    """Whatever the shipped definitions declare (the measures branch's declarations)."""
    from carepath.bootstrap import current_definitions

    for definition in current_definitions():
        declared = getattr(definition, "measures", ())
        exported = measure_resources(definition)
        assert [m["name"] for m in exported] == [d.id.replace("-", "_") for d in declared]
        for resource in exported:
            Measure.model_validate(resource)
            assert all(p["description"] for p in resource["group"][0]["population"])


def test_definition_export_prints_the_bundle_with_format_fhir_bundle() -> None:
    from carepath.cli.definition import definition_app as app

    result = CliRunner().invoke(app, ["export", "--format", "fhir-bundle"])
    assert result.exit_code == 0, result.output
    Bundle.model_validate(json.loads(result.output))
    wrong = CliRunner().invoke(app, ["export", "--format", "xml"])
    assert wrong.exit_code != 0
    assert "expected fhir or fhir-bundle" in wrong.output
