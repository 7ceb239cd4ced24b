"""Measures are declared in the definition files, checked when they load, and banded exactly."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from pathway.definition import compile_definition, load_definition, shipped_definition_files
from pathway.errors import InvalidDefinition
from tests.support.protocol import protocol_file

DEFS = {d.id: d for d in (load_definition(p) for p in shipped_definition_files())}
L1L2, FLS = DEFS["l1-l2-compression-fracture"], DEFS["fracture-liaison"]


def spec_ids(name: str, pattern: str) -> list[str]:
    text = protocol_file(name).read_text(encoding="utf-8")
    return re.findall(rf"^\| ({pattern}) \|", text, re.MULTILINE)


def test_the_six_protocol_measures_and_the_eight_fls_measures_are_declared() -> None:
    assert [m.id for m in L1L2.measures] == spec_ids("PROTOCOL.md", r"M-[A-Z0-9-]+")
    assert [m.id for m in FLS.measures] == spec_ids("FLS.md", r"FLS-KPI-[A-Z0-9-]+")
    for m in (*L1L2.measures, *FLS.measures):
        assert m.title and m.refs and "Numerator:" in m.description
        assert "Denominator:" in m.description


def test_months_and_bands_as_the_specs_set_them() -> None:
    assert {m.month_clock for m in L1L2.measures} == {"opening"}
    assert {m.month_fact for m in FLS.measures} == {"fracture_date"}
    recommended = next(m for m in FLS.measures if m.id == "FLS-KPI-RECOMMENDED")
    assert (recommended.red_below, recommended.amber_up_to) == (0.5, None)
    others = [m for m in (*L1L2.measures, *FLS.measures) if m is not recommended]
    assert {(m.red_below, m.amber_up_to) for m in others} == {(0.5, 0.8)}


@pytest.mark.parametrize(
    ("num", "den", "band"),
    [(49, 100, "red"), (1, 2, "amber"), (4, 5, "amber"), (81, 100, "green"), (0, 0, None),
     (0, 3, "red"), (3, 3, "green")],
)  # fmt: skip
def test_bands_red_below_50_amber_50_to_80_both_included_green_above(num, den, band) -> None:
    assert L1L2.measures[0].band(num, den) == band


@pytest.mark.parametrize(("num", "den", "band"), [(49, 100, "red"), (1, 2, "green"), (0, 0, None)])
def test_recommended_is_red_below_50_and_green_from_50(num, den, band) -> None:
    recommended = next(m for m in FLS.measures if m.id == "FLS-KPI-RECOMMENDED")
    assert recommended.band(num, den) == band


def edited(path: list[Any], value: Any, measure: str = "M-DXA-6W") -> dict[str, Any]:
    doc = copy.deepcopy(dict(L1L2.document))
    target = doc["measures"][measure]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["numerator", 0, "recorded"], "dxa_typo", "unknown fact 'dxa_typo'"),
        (["denominator", 0, "entered"], "care", "unknown state 'care'"),
        (["numerator"], [{"rule_fired": "NO-SUCH-RULE"}], "unknown rule 'NO-SUCH-RULE'"),
        (["window", "of"], "episode_week", "got of='episode_week'"),
        (["numerator", 0, "value"], "yes", "dxa_done"),
        (["bands"], {"red_below": 0.9, "amber_up_to": 0.8}, "amber_up_to"),
        (["month"], "fracture", "month"),
        (["refs"], ["9"], "'9' is not one of the references"),
        (["numerator"], [{"kept": True}], "expected exactly one of"),
    ],
)
def test_a_bad_measure_is_a_load_error_naming_it(path, value, message) -> None:
    with pytest.raises(InvalidDefinition) as err:
        compile_definition(edited(path, value))
    assert "measures.M-DXA-6W" in str(err.value) or message in str(err.value)
    assert message in str(err.value)


def test_an_unknown_timer_in_a_window_is_a_load_error() -> None:
    doc = edited(["window", "opens"], {"timer": "FU-NEVER"}, "M-DECISION-3M")
    with pytest.raises(
        InvalidDefinition, match=r"measures.M-DECISION-3M.window.opens: unknown timer 'FU-NEVER'"
    ):
        compile_definition(doc)


def test_measures_are_part_of_the_version() -> None:
    doc = edited(["title"], "DXA within six weeks")
    assert compile_definition(doc).version != L1L2.version
