"""WCAG 2.1 AA in a real browser: axe-core on every carepath page, and the pages driven by keys.

axe-core 4 (vendored in ``tests/integration/web/vendor/``) is injected into each page a coordinator can
reach and run with the WCAG 2.0 and 2.1 level A and AA rules; any violation fails the test,
printed with its rule, impact, element and the fix axe suggests. Folded content
(``<details>``) is unfolded for the check and folded again. The pages are checked at 1440 px
wide and, for reflow, at 400 px. The rules run and the pages checked are written to
``test-artifacts/axe-report.json``.

The keyboard test then does a coordinator's work with keys alone — skip link, filters, a link
to an episode, a task marked done and one not done, a request, a rule's evidence unfolded, the
episode closed, an observation refused for a field error and then recorded, sign out — checking
at each step which element has the focus and that the focus is visible (its outline or shadow
differs from the same element's unfocused), and running axe on the states the forms leave.

The server, the browser and the skip-or-fail rule without Chromium are the worklist browser
test's (``test_web_browser``); this module gets its own server and demo cohort.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.integration.web import test_web_browser as real_browser
from tests.integration.web import test_web_dashboard_browser as dashboard_browser
from tests.support.protocol import REPOSITORY
from tests.support.web_html import episode_of

# The per-test limit is a hang guard: a page-by-page axe run takes ~30 s on a quiet machine,
# 60 s with both cores busy, so the suite's 120 s would fail a slow run that is not hung.
pytestmark = pytest.mark.timeout(360)

server = real_browser.server  # this module's own uvicorn and demo cohort
browser = real_browser.browser
dashboard_server = dashboard_browser.dashboard_server  # the dashboard's, with the measures fake

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
CSS = REPOSITORY / "carepath" / "web" / "static" / "carepath.css"
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
REPORT = real_browser.ARTIFACTS / "axe-report.json"

# Episodes of the demo cohort in every state and tone, ended ones with their whole timeline.
EPISODES = {
    "DEMO-0001": "intake",
    "DEMO-0003": "workup",
    "DEMO-0009": "conservative care, overdue, with an open task",
    "DEMO-0010": "conservative care, with a refused request",
    "DEMO-0007": "reassessment",
    "DEMO-0012": "discharged (ended)",
    "DEMO-0013": "immediate transfer (ended)",
    "DEMO-0014": "delayed referral (ended)",
    "DEMO-0015": "closed (ended)",
    "DEMO-0016": "kyphoplasty consideration (ended)",
    # the fracture liaison pathway, its own tones, forms with date fields and links
    "DEMO-F001": "FLS identified, overdue",
    "DEMO-F003": "FLS assessment, 12-week escalations",
    "DEMO-F005": "FLS treatment, specialist referral pending",
    "DEMO-F008": "FLS first follow-up, overdue",
    "DEMO-F011": "FLS annual follow-up, overdue",
    "DEMO-F013": "FLS lifestyle advice (ended)",
    "DEMO-F014": "FLS not eligible (ended)",
    "DEMO-F015": "FLS closed (ended)",
}

NARROW = {
    "worklist": "/worklist",
    "episode DEMO-0009": f"/episodes/{episode_of('DEMO-0009')}",
    "episode DEMO-0013": f"/episodes/{episode_of('DEMO-0013')}",
}

_RUN_AXE = """
const [tags, done] = [arguments[0], arguments[arguments.length - 1]];
const folded = [...document.querySelectorAll('details:not([open])')];
folded.forEach(d => { d.open = true; });
const refold = () => folded.forEach(d => { d.open = false; });
axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
  .then(r => {
          refold();
          const ran = [r.violations, r.passes, r.incomplete, r.inapplicable].flat();
          done({violations: r.violations, rules: ran.map(x => x.id), version: axe.version});
        },
        e => { refold(); done({error: String(e)}); });
"""


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.0/2.1 A and AA violations on the page the browser shows (and the rules
    it ran, for the report)."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text(encoding="utf-8"))
    driver.set_script_timeout(30)
    result = driver.execute_async_script(_RUN_AXE, list(TAGS))
    assert "error" not in result, f"axe-core failed: {result.get('error')}"
    _RULES.update(result["rules"])
    _AXE_VERSIONS[result["version"]] = None
    return result["violations"]


def describe(page: str, violations: list[dict[str, Any]]) -> str:
    """One violation a paragraph: rule, impact, what it means, then each element and its fix."""
    lines = [f"{page}: {len(violations)} rule(s) violated"]
    for v in violations:
        lines.append(f"  [{v['id']}] impact {v['impact']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            lines.append(f"       {node['html'][:240]}")
            for summary in (node.get("failureSummary") or "").splitlines():
                lines.append(f"       {summary.strip()}")
    return "\n".join(lines)


# What this module checked, for the report: pages and their violations, the rules axe ran.
_CHECKED: dict[str, list[dict[str, Any]]] = {}
_RULES: set[str] = set()
_AXE_VERSIONS: dict[str, None] = {}


class Audit:
    """The pages a test checked and what axe found on each; ``write`` reports this module's."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.found: dict[str, list[dict[str, Any]]] = {}

    def check(self, page: str) -> None:
        self.found[page] = _CHECKED[page] = axe_violations(self.driver)

    def failures(self) -> str:
        return "\n\n".join(describe(p, v) for p, v in self.found.items() if v)

    def write(self) -> None:
        real_browser.ARTIFACTS.mkdir(exist_ok=True)
        REPORT.write_text(
            json.dumps(
                {
                    "axe": list(_AXE_VERSIONS),
                    "tags": list(TAGS),
                    "rules": sorted(_RULES),
                    "pages": {
                        p: sum(len(v["nodes"]) for v in found) for p, found in _CHECKED.items()
                    },
                    "violations": {p: v for p, v in _CHECKED.items() if v},
                },
                indent=2,
            ),
            encoding="utf-8",
        )


def sign_in(driver: Any, base: str, token: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/login")
    if "/login" in driver.current_url:
        driver.find_element(By.ID, "token").send_keys(token)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.ID, "worklist")))


def wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def assert_told_in_words(driver: Any) -> None:
    """No state, band or count is told by colour alone: each coloured mark carries words, and
    each worklist row sits under its band's heading."""
    mute = driver.execute_script(
        """return [...document.querySelectorAll('.badge, .chip, .pill, .tag, .bucket-head th')]
             .filter(e => !/[A-Za-z]/.test(e.textContent)).map(e => e.outerHTML)"""
    )
    assert mute == [], f"coloured marks without words: {mute}"
    unheaded = driver.execute_script(
        """return [...document.querySelectorAll('tr.row')]
             .filter(r => !/[A-Za-z]/.test(r.closest('tbody').querySelector('.bucket-head th')
                                           ?.textContent || ''))
             .map(r => r.dataset.episode)"""
    )
    assert unheaded == [], f"worklist rows whose band has no heading: {unheaded}"


def test_every_page_has_no_wcag_2_1_aa_violation(server: tuple[str, str], browser: Any) -> None:
    """Each page a coordinator can reach, in each of its states. A new page of carepath's own
    (not the third-party Swagger UI) gets its ``audit.check`` here, its forms' states in the
    keyboard test."""
    from selenium.webdriver.common.by import By

    base, token = server
    audit = Audit(browser)
    browser.delete_all_cookies()

    browser.get(f"{base}/login")
    wait_for(browser, "#token")
    audit.check("sign-in")
    browser.find_element(By.ID, "token").send_keys("cpt_not-a-token")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(browser, "#login-error")
    audit.check("sign-in, token refused")

    sign_in(browser, base, token)
    audit.check("worklist")
    assert_told_in_words(browser)
    browser.get(f"{base}/worklist?state=immediate_transfer&q=")
    wait_for(browser, "tr.row")
    audit.check("worklist, filtered to an ended state")
    browser.get(f"{base}/worklist?pathway=fracture-liaison")
    wait_for(browser, "tr.row")
    audit.check("worklist, one pathway")
    browser.get(f"{base}/worklist?state=&q=nobody")
    wait_for(browser, ".empty")
    audit.check("worklist, nothing matches")

    for ref, what in EPISODES.items():
        browser.get(f"{base}/episodes/{episode_of(ref)}")
        wait_for(browser, "#timeline")
        audit.check(f"episode {ref}: {what}")
        assert_told_in_words(browser)

    browser.get(f"{base}/episodes/{'0' * 32}")
    wait_for(browser, "section.card h1")
    audit.check("episode not found")

    # Narrow, as on a small screen or zoomed to 400 %: the content reflows and keeps contrast.
    browser.set_window_size(400, 900)
    try:
        for page, path in NARROW.items():
            browser.get(f"{base}{path}")
            wait_for(browser, "main h1")
            audit.check(f"{page}, 400 px wide")
    finally:
        browser.set_window_size(1440, 1000)

    audit.write()
    failures = audit.failures()
    assert not failures, "axe-core found WCAG 2.1 AA violations:\n\n" + failures


def test_every_colour_of_the_pages_is_one_of_the_palette() -> None:
    """Colours are named once, in ``:root``; the rules use ``var(--…)`` (no browser needed)."""
    css = CSS.read_text(encoding="utf-8")
    root = re.search(r"^:root \{.*?^\}", css, re.S | re.M)
    assert root, "no :root block in carepath.css"
    rest = css[: root.start()] + css[root.end() :]
    literals = re.findall(r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?)\([^)]*\)", rest)
    assert literals == [], f"colours outside the palette (:root) of carepath.css: {literals}"


def test_the_audit_dashboard_has_no_wcag_2_1_aa_violation(
    dashboard_server: tuple[str, str], browser: Any
) -> None:
    """The dashboard with every band and a zero denominator, a measure's failing episodes
    opened, the same at 400 px wide, a query refused, and the failing episodes' own page."""
    from selenium.webdriver.common.by import By

    base, token = dashboard_server
    audit = Audit(browser)
    dashboard_browser.sign_in_as_auditor(browser, base, token)
    audit.check("audit dashboard")
    assert_told_in_words(browser)
    browser.find_element(By.CSS_SELECTOR, "[data-measure=M-OSTEO-6W] a.measure-link").click()
    wait_for(browser, "[data-measure=M-OSTEO-6W] .failing tr[data-episode]")
    audit.check("audit dashboard, failing episodes opened")
    browser.get(f"{base}/dashboard?pathway=fracture-liaison&from=2025-11&to=2026-01")
    wait_for(browser, ".measure")
    audit.check("audit dashboard, one pathway and months")
    browser.get(f"{base}/dashboard?from=2026-13")
    wait_for(browser, "#dashboard-error")
    audit.check("audit dashboard, a month refused")
    browser.get(f"{base}/dashboard/failing?pathway=fracture-liaison&measure=FLS-KPI-DXA-12W")
    wait_for(browser, ".failing-list")
    audit.check("failing episodes page")
    browser.set_window_size(400, 900)
    try:
        browser.get(f"{base}/dashboard")
        wait_for(browser, ".measure")
        audit.check("audit dashboard, 400 px wide")
    finally:
        browser.set_window_size(1440, 1000)
    audit.write()
    failures = audit.failures()
    assert not failures, "axe-core found WCAG 2.1 AA violations:\n\n" + failures


# -- the keyboard ---------------------------------------------------------------------------

_FOCUS = """
const el = document.activeElement;
const look = s => [s.outlineStyle, s.outlineWidth, s.outlineColor, s.boxShadow].join(' | ');
const ring = getComputedStyle(el);
const focused = look(ring);
const twin = el.cloneNode(false);  // the same element, unfocused (blur() would move the focus)
twin.removeAttribute('id');
el.after(twin);
const unfocused = look(getComputedStyle(twin));
twin.remove();
const box = el.getBoundingClientRect();
return {
  element: el.outerHTML.slice(0, 160), focused, unfocused,
  ring: ring.outlineStyle !== 'none' && parseFloat(ring.outlineWidth) >= 2
        || ring.boxShadow !== 'none',
  onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.left < innerWidth,
};
"""


_NAME = """
const e = document.activeElement;
return e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.name ? `[name=${e.name}]` : '');
"""


def press(driver: Any, *keys: str, shift: bool = False) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    chain = ActionChains(driver)
    if shift:
        chain.key_down(Keys.SHIFT)
    chain.send_keys(*keys)
    if shift:
        chain.key_up(Keys.SHIFT)
    chain.perform()


def focused_matches(driver: Any, css: str) -> bool:
    return driver.execute_script("return document.activeElement.matches(arguments[0])", css)


def assert_focus_visible(driver: Any) -> None:
    """The focused element shows it: an outline or shadow it does not have unfocused."""
    seen = driver.execute_script(_FOCUS)
    assert seen["onScreen"], f"the focused element is off screen: {seen['element']}"
    assert seen["ring"] and seen["focused"] != seen["unfocused"], (
        f"no visible focus on {seen['element']}: focused {seen['focused']!r}, "
        f"unfocused {seen['unfocused']!r}"
    )


def tab_to(driver: Any, css: str, *, back: bool = False, limit: int = 150) -> Any:
    """Tab (Shift+Tab if ``back``) until the element matching ``css`` has the focus, checking
    on the way that every element the focus lands on shows it."""
    from selenium.webdriver.common.keys import Keys

    visited = []
    for _ in range(limit):
        press(driver, Keys.TAB, shift=back)
        assert_focus_visible(driver)
        if focused_matches(driver, css):
            return driver.switch_to.active_element
        visited.append(driver.execute_script(_NAME))
    path = " → ".join(dict.fromkeys(visited))
    raise AssertionError(f"{limit} × {'Shift+' if back else ''}Tab never reached {css}: {path}")


def test_a_coordinator_works_with_the_keyboard_alone(server: tuple[str, str], browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = server
    wait = WebDriverWait(browser, 60)  # a hang guard: a loaded machine's Chromium is slow
    audit = Audit(browser)
    browser.delete_all_cookies()

    # Sign in: the token field has the focus on arrival; Tab, Enter on the button.
    browser.get(f"{base}/login")
    wait_for(browser, "#token")
    assert focused_matches(browser, "#token")
    press(browser, token)
    tab_to(browser, "form button[type=submit]")
    press(browser, Keys.ENTER)
    wait_for(browser, "#worklist tr.row")

    # The skip link is the first stop, shows on focus and leads past the top bar to the filters.
    press(browser, Keys.TAB)
    assert focused_matches(browser, "a.skip")
    assert_focus_visible(browser)
    press(browser, Keys.ENTER)
    press(browser, Keys.TAB)
    assert focused_matches(browser, "#q"), "the skip link did not lead to the content"
    assert_focus_visible(browser)

    # Filter by patient: type, Tab to Apply, Enter.
    press(browser, "DEMO-0017")
    tab_to(browser, ".filters button[type=submit]")
    press(browser, Keys.ENTER)
    wait.until(ec.url_contains("q=DEMO-0017"))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.row")
    # the patient's L1–L2 episode, and the fracture-liaison episode it enrolled
    assert episode_of("DEMO-0017") in [r.get_attribute("data-episode") for r in rows]
    assert all("DEMO-0017" in r.text for r in rows)
    # Clear it: a link, Enter.
    tab_to(browser, ".filters a.btn")
    press(browser, Keys.ENTER)
    wait.until(lambda d: "q=" not in d.current_url and d.find_elements(By.ID, "state"))

    # Filter by state: the select takes type-ahead, Space on Apply sends the form.
    tab_to(browser, "#state")
    press(browser, "Con")
    assert browser.find_element(By.ID, "state").get_attribute("value") == "conservative_care"
    tab_to(browser, ".filters button[type=submit]")
    press(browser, Keys.SPACE)
    wait.until(ec.url_contains("state=conservative_care"))
    states = {b.text for b in browser.find_elements(By.CSS_SELECTOR, "tr.row .badge")}
    assert states == {"Conservative care"}

    # The focus on a patient link survives the worklist's refresh (htmx swaps it every 15 s).
    overdue = episode_of("DEMO-0009")
    link = tab_to(browser, f"#open-{overdue}")
    browser.execute_script(
        "htmx.ajax('GET', location.pathname + location.search,"
        " {target: '#worklist', swap: 'outerHTML'})"
    )
    wait.until(ec.staleness_of(link))
    assert focused_matches(browser, f"#open-{overdue}"), "the refresh lost the focus"
    assert_focus_visible(browser)

    # Open the episode: Enter on the link.
    press(browser, Keys.ENTER)
    wait_for(browser, "#tasks li.task-task")
    assert browser.current_url.endswith(f"/episodes/{overdue}")

    # Mark the task done with a note: type, Tab to Done, Enter. The outcome takes the focus.
    tab_to(browser, "li.task-task input[name=note]")
    press(browser, "Referred by phone")
    press(browser, Keys.TAB)
    assert focused_matches(browser, "li.task-task button[value=done]")
    assert_focus_visible(browser)
    press(browser, Keys.ENTER)
    wait.until(ec.text_to_be_present_in_element((By.ID, "timeline"), "“Referred by phone”"))
    wait.until(lambda d: focused_matches(d, "#outcome"))
    assert "Task updated" in browser.switch_to.active_element.text
    assert_focus_visible(browser)
    audit.check("episode, a task marked done")

    # Mark the escalation not done: Tab on to its button, Space.
    tab_to(browser, "li.task-escalation button[value=not_done]")
    press(browser, Keys.SPACE)
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "li.task-escalation"))
    assert "Marked not done" in browser.find_element(By.ID, "timeline").text
    wait.until(lambda d: focused_matches(d, "#outcome"))

    # Request an intervention the pathway refuses (type-ahead, Enter): the refusal has the focus.
    tab_to(browser, "#action")
    press(browser, "v")
    assert browser.find_element(By.ID, "action").get_attribute("value") == "vertebroplasty"
    tab_to(browser, "#requests button[type=submit]")
    press(browser, Keys.ENTER)
    wait.until(lambda d: focused_matches(d, "#outcome.alert-warning"))
    assert "Request refused." in browser.switch_to.active_element.text
    audit.check("episode, a request refused")

    # Unfold a rule's evidence in the timeline: Enter on its summary.
    tab_to(browser, "#timeline .rules summary")
    press(browser, Keys.ENTER)
    wait.until(lambda d: d.execute_script("return document.activeElement.parentElement.open"))

    # Close the episode: Enter unfolds the form, type-ahead picks the reason, Enter sends it.
    tab_to(browser, "#close summary")
    press(browser, Keys.ENTER)
    tab_to(browser, "#reason")
    press(browser, "l")
    assert browser.find_element(By.ID, "reason").get_attribute("value") == "lost_to_follow_up"
    tab_to(browser, "#close button[type=submit]")
    press(browser, Keys.ENTER)
    wait_for(browser, ".alert-info")
    assert "This episode has ended: Closed" in browser.find_element(By.ID, "episode").text
    wait.until(lambda d: focused_matches(d, "#outcome"))
    audit.check("episode, just closed")

    # Back to the worklist (Shift+Tab up to the breadcrumb), then the conservative-care one.
    tab_to(browser, "nav.crumbs a", back=True)
    press(browser, Keys.ENTER)
    wait_for(browser, "#worklist tr.row")
    conservative = episode_of("DEMO-0017")
    tab_to(browser, f"#open-{conservative}")
    press(browser, Keys.ENTER)
    wait_for(browser, "#observe")

    # An out-of-range pain score, sent with Enter in the field: the error summary takes the
    # focus, its link leads to the field.
    tab_to(browser, "#f-pain_score")
    press(browser, "99", Keys.ENTER)
    wait_for(browser, "#observe-errors")
    wait.until(lambda d: focused_matches(d, "#observe-errors"))
    assert_focus_visible(browser)
    audit.check("episode, the observation form with a field error")
    tab_to(browser, '#observe-errors a[href="#f-pain_score"]')
    press(browser, Keys.ENTER)
    assert focused_matches(browser, "#f-pain_score"), "the error link did not lead to the field"
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL).perform()
    press(browser, Keys.BACKSPACE)
    assert browser.find_element(By.ID, "f-pain_score").get_attribute("value") == ""

    # A motor deficit, chosen by type-ahead; Tab to the button, Enter: immediate transfer.
    tab_to(browser, "#f-neuro_deficit_motor")
    press(browser, "y")
    assert browser.find_element(By.ID, "f-neuro_deficit_motor").get_attribute("value") == "yes"
    tab_to(browser, "#observe button[type=submit]")
    press(browser, Keys.ENTER)
    outcome = wait_for(browser, "#outcome")
    assert "Immediate transfer" in outcome.text and "TX-NEURO" in outcome.text
    wait.until(lambda d: focused_matches(d, "#outcome"))
    audit.check("episode, moved by an observation")

    # Sign out: Shift+Tab up to the top bar's button, Enter.
    tab_to(browser, ".who button[type=submit]", back=True)
    press(browser, Keys.ENTER)
    wait_for(browser, "#token")
    assert "/login" in browser.current_url

    audit.write()
    failures = audit.failures()
    assert not failures, "axe-core found WCAG 2.1 AA violations:\n\n" + failures
