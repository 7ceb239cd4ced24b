"""The audit dashboard over HTTP: who may see it, what it shows, its query, its failing lists.

The numbers come from the measures fake (``tests/support/measures_fake.py``), installed as
``carepath.measures`` for each test; its ``CALLS`` say what the page asked for.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import measures_fake as fake
from tests.support.web_html import episode_of
from tests.support.web_site import NOW, Site

CSS = Path(__file__).resolve().parents[3] / "carepath" / "web" / "static" / "dashboard.css"


@pytest.fixture(autouse=True)
def measures(monkeypatch: pytest.MonkeyPatch) -> None:
    fake.install(monkeypatch)


def cards(html: str) -> dict[str, str]:
    """measure id → its card's HTML."""
    parts = re.split(r'(?=<article class="measure )', html)
    out = {}
    for part in parts[1:]:
        mid = re.search(r'data-measure="([^"]+)"', part)
        assert mid
        out[mid.group(1)] = part.split("</article>", 1)[0]
    return out


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_auditors_and_admins_see_the_dashboard(site: Site) -> None:
    for role in ("auditor", "admin"):
        page = site.client(role).get("/dashboard")
        assert page.status_code == 200, role
        assert "<h1>Audit dashboard</h1>" in page.text


def test_coordinators_are_refused_and_strangers_sent_to_sign_in(site: Site) -> None:
    refused = site.client("coordinator").get("/dashboard")
    assert refused.status_code == 403
    assert "may not see the audit dashboard" in refused.text
    fragment = site.client("coordinator").get(
        "/dashboard/failing?pathway=fracture-liaison&measure=FLS-KPI-DXA-12W"
    )
    assert fragment.status_code == 403
    anonymous = site.client(None).get("/dashboard?from=2026-01", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fdashboard%3Ffrom%3D2026-01"
    assert fake.CALLS == [], "nothing was computed for them"


def test_the_worklist_header_links_to_the_dashboard_for_auditors_only(site: Site) -> None:
    link = '<a href="/dashboard"'
    assert link in site.client("auditor").get("/worklist").text
    assert link in site.client("admin").get("/worklist").text
    assert link not in site.client("coordinator").get("/worklist").text


def test_each_measure_shows_its_band_in_words_beside_its_colour_and_its_counts(
    site: Site,
) -> None:
    page = site.client("auditor").get("/dashboard").text
    shown = cards(page)
    assert len(shown) == 8 + 6
    expected = {
        "FLS-KPI-ASSESSED-12W": ("green", "Green", "91 %", "39 of 43 episodes"),
        "FLS-KPI-FALLS": ("amber", "Amber", "70 %", "30 of 43 episodes"),
        "FLS-KPI-MONITORED-16W": ("amber", "Amber", "80 %", "16 of 20 episodes"),
        "FLS-KPI-STARTED-16W": ("amber", "Amber", "50 %", "10 of 20 episodes"),
        "FLS-KPI-DXA-12W": ("red", "Red", "40 %", "17 of 43 episodes"),
        "M-DECISION-3M": ("none", "No data", "—", "0 of 0 episodes"),
    }
    for mid, (css, words, share, counts) in expected.items():
        card = shown[mid]
        assert f'class="measure measure-{css}"' in card, mid
        band = re.search(r'<span class="band band-(\w+)">(.*?)</span>\s*</div>', card, re.S)
        assert band and band.group(1) == css and text(band.group(2)) == words, mid
        assert f"<strong>{share}</strong>" in card, mid
        assert counts in text(card), mid


def test_each_measure_has_a_run_chart_drawn_by_matplotlib_and_its_numbers_as_a_table(
    site: Site,
) -> None:
    card = cards(site.client("auditor").get("/dashboard").text)["FLS-KPI-DXA-12W"]
    src = re.search(r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)"', card)
    assert src, "the run chart is an SVG image"
    svg = base64.b64decode(src.group(1)).decode()
    assert "Matplotlib" in svg and "<svg" in svg
    assert ">50 %<" in svg and ">80 %<" in svg, "the 50 % and 80 % lines are labelled"
    assert "2025-10" in svg and "2026-02" in svg
    assert re.search(r'alt="Run chart of DXA by week 12[^"]*50 % and 80 %', card)
    rows = re.findall(r"<tr><th scope=\"row\">([\d-]+)</th><td>(\d+)</td><td>(\d+)</td>", card)
    assert rows == [(m, str(n), str(d)) for m, (n, d) in
                    zip(fake.MONTHS, ((3, 9), (4, 10), (2, 8), (5, 9), (3, 7)), strict=True)]  # fmt: skip


def test_each_run_chart_draws_its_own_numbers(site: Site) -> None:
    """The measures of a pathway share one drawn axes (redrawn per measure): no chart may
    show another's line."""
    shown = cards(site.client("auditor").get("/dashboard").text)
    chart = re.compile(r'<img class="chart" src="([^"]+)"')
    charts = {m: chart.findall(c)[0] for m, c in shown.items() if "0 of 0 episodes" not in c}
    assert len(charts) == 12
    assert len(set(charts.values())) == len(charts)
    from carepath.web.dashboard_charts import run_chart

    shares = tuple(n / d for n, d in ((3, 9), (4, 10), (2, 8), (5, 9), (3, 7)))
    assert charts["FLS-KPI-DXA-12W"] == run_chart(fake.MONTHS, shares)
    run_chart.cache_clear()
    assert charts["FLS-KPI-DXA-12W"] == run_chart(fake.MONTHS, shares), "drawn again, the same"


def test_a_month_without_episodes_is_a_gap_in_the_run_chart_not_a_skipped_month(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = fake.report

    def sparse(pathway: str, as_of: datetime) -> dict:
        report = original(pathway, as_of)
        for m in report["measures"]:
            m["by_month"] = [b for b in m["by_month"] if b["month"] != "2025-12"]
        return report

    monkeypatch.setattr(fake, "report", sparse)
    card = cards(site.client("auditor").get("/dashboard").text)["FLS-KPI-DXA-12W"]
    months = re.findall(
        r'<tr><th scope="row">([\d-]+)</th><td>(\d+)</td><td>(\d+)</td><td>([^<]+)<', card
    )
    assert months[2] == ("2025-12", "0", "0", "—")
    assert [m[0] for m in months] == list(fake.MONTHS)


def test_outcomes_time_in_state_and_refusals_are_charted_and_tabled(site: Site) -> None:
    page = site.client("auditor").get("/dashboard?pathway=l1-l2-compression-fracture").text
    assert page.count('<img class="chart"') == 6 + 2
    assert "Bar chart of the episodes that ended" in page
    assert "Bar chart of the days spent in each state" in page
    body = text(page)
    assert "Discharged FU-DISCHARGE 14" in body
    assert "Conservative care 16 88 97.5" in body
    assert "REQ-MRI 2" in body


def test_the_query_is_the_commands_options(site: Site) -> None:
    client = site.client("auditor")
    page = client.get(
        "/dashboard?pathway=fracture-liaison&from=2025-11&to=2026-01&as_of=2026-02-28"
    )
    assert page.status_code == 200
    assert fake.CALLS[-1] == (
        "pathway_reports",
        {
            "pathway": "fracture-liaison",
            "from": "2025-11",
            "to": "2026-01",
            "as_of": datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
        },
    )
    assert 'id="pathway-fracture-liaison"' in page.text
    assert 'id="pathway-l1-l2-compression-fracture"' not in page.text
    # the measure links keep the query
    assert (
        'href="/dashboard/failing?pathway=fracture-liaison&amp;from=2025-11&amp;to=2026-01'
        '&amp;as_of=2026-02-28&amp;measure=FLS-KPI-DXA-12W"' in page.text
    )
    client.get("/dashboard")
    assert fake.CALLS[-1] == (
        "pathway_reports", {"pathway": None, "from": None, "to": None, "as_of": NOW}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13", "from: got '2026-13', expected a month as YYYY-MM"),
        ("to=26-01", "to: got '26-01', expected a month as YYYY-MM"),
        (
            "from=2026-03&to=2026-01",
            "to: got '2026-01', expected a month not before from (2026-03)",
        ),
        ("as_of=2026-02-30", "as_of: got '2026-02-30', expected a date as YYYY-MM-DD"),
        ("as_of=20260201", "as_of: got '20260201', expected a date as YYYY-MM-DD"),
        ("pathway=nope", "pathway: got 'nope', expected one of "),
    ],
)
def test_a_bad_query_is_named_and_nothing_is_computed(site: Site, query: str, message: str) -> None:
    page = site.client("auditor").get(f"/dashboard?{query}")
    assert page.status_code == 400
    assert message.replace("'", "&#39;") in page.text
    assert "Nothing was computed." in page.text
    assert fake.CALLS == []


def test_a_measure_lists_its_failing_episodes_with_reasons_and_links(site: Site) -> None:
    client = site.client("auditor")
    url = "/dashboard/failing?pathway=l1-l2-compression-fracture&measure=M-OSTEO-6W&from=2025-12"
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text, "a fragment for htmx"
    rows = re.findall(r'<tr data-episode="(\w+)"><td><a href="/episodes/(\w+)">', fragment.text)
    assert rows == [(episode_of(r), episode_of(r)) for r in ("DEMO-0009", "DEMO-0010")]
    assert "referral recorded on care day 47" in fragment.text
    assert "both recorded on care day 30" not in fragment.text, "only the failing ones"
    assert fake.CALLS[-1] == (
        "measure_episodes",
        {"pathway": "l1-l2-compression-fracture", "measure": "M-OSTEO-6W", "failing": True,
         "from": "2025-12", "to": None, "as_of": NOW},
    )  # fmt: skip
    whole = client.get(url)
    assert "<html" in whole.text and "<h1>Episodes that missed M-OSTEO-6W</h1>" in whole.text
    assert 'href="/dashboard?pathway=l1-l2-compression-fracture&amp;from=2025-12"' in whole.text


def test_a_measure_without_failures_says_so(site: Site) -> None:
    page = site.client("auditor").get(
        "/dashboard/failing?pathway=fracture-liaison&measure=FLS-KPI-FALLS",
        headers={"HX-Request": "true"},
    )
    assert "No episode missed FLS-KPI-FALLS." in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("measure=M-OSTEO-6W", "pathway: got &#39;&#39;, expected a pathway id"),
        ("pathway=l1-l2-compression-fracture", "measure: got &#39;&#39;, expected a measure id"),
        ("pathway=x&measure=M-OSTEO-6W", "pathway: got &#39;x&#39;, expected one of"),
    ],
)
def test_a_bad_failing_query_is_named(site: Site, query: str, message: str) -> None:
    page = site.client("auditor").get(f"/dashboard/failing?{query}")
    assert page.status_code == 400
    assert message in page.text
    assert [c for c in fake.CALLS if c[0] == "measure_episodes"] == []


def test_declared_measures_are_described_and_an_undeclared_one_refused(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    definitions = site.app.state.definitions
    real = definitions.currents
    monkeypatch.setattr(definitions, "currents", lambda: [fake.with_measures(d) for d in real()])
    page = site.client("auditor").get(
        "/dashboard/failing?pathway=fracture-liaison&measure=M-OSTEO-6W"
    )
    assert page.status_code == 400
    assert "measure: got &#39;M-OSTEO-6W&#39;, expected one of FLS-KPI-ASSESSED-12W" in page.text
    shown = cards(site.client("auditor").get("/dashboard").text)
    dxa, recommended = shown["FLS-KPI-DXA-12W"], shown["FLS-KPI-RECOMMENDED"]
    assert "Numerator: dxa by week 12. Denominator: the eligible episodes." in dxa
    assert "Bands: red below 50 %, amber 50–80 %, green above." in dxa
    assert "Bands: red below 50 %, green from 50 %." in recommended


def test_the_dashboard_keeps_the_pages_security_headers(site: Site) -> None:
    page = site.client("auditor").get("/dashboard")
    assert page.headers["content-security-policy"].startswith(
        "default-src 'self'; script-src 'self';"
    )
    assert page.headers["cache-control"] == "no-store"


def test_the_dashboard_styles_use_only_the_palette() -> None:
    css = CSS.read_text(encoding="utf-8")
    literals = re.findall(r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?)\([^)]*\)", css)
    assert literals == [], f"colours outside the palette (:root) of carepath.css: {literals}"
