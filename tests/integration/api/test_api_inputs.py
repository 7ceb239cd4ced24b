"""The API's inputs (issue 12, item 7): every break found under attack is a 422 naming the
field, on SQLite and PostgreSQL, never a 500; OPTIONS and 405 list every method of a path;
the docs work offline under a CSP; the schema lists each pathway's facts, actions and reasons.
"""

from __future__ import annotations

import base64

import orjson
import pytest

from tests.support.api_world import ApiWorld

ASSETS_URL = "/api/docs/assets"


def _cursor(due: object, id_: str = "x") -> str:
    body = b'["%s", "%s"]' % (str(due).encode(), id_.encode("ascii", "backslashreplace"))
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


BAD_CURSORS = {
    "year 1 at +14:00": _cursor("0001-01-01T00:00:00+14:00"),
    "year 1": _cursor("0001-01-01T00:00:00+00:00"),
    "year 9999": _cursor("9999-12-31T23:59:59+00:00"),
    "year 9999 at -14:00": _cursor("9999-12-31T23:59:59-14:00"),
    "a NUL in the id": _cursor("2026-03-02T09:00:00+00:00", "a\\u0000b"),
    "a NUL in the text": "ab\x00cd",
    "a lone surrogate in the id": _cursor("2026-03-02T09:00:00+00:00", "\ud800"),
    "not base64": "%%%",
}


def test_a_worklist_cursor_that_no_page_returned_is_a_422(api_on: ApiWorld) -> None:
    for name, cursor in BAD_CURSORS.items():  # one app per database: every cursor on it
        response = api_on.call("GET", "/api/episodes", params={"cursor": cursor})
        assert response.status_code == 422, (name, response.text)
        assert response.json()["field"] == "cursor"


def test_a_real_cursor_still_pages(api: ApiWorld) -> None:
    for i in range(3):
        api.open_episode(patient_ref=f"MRN-{i}")
    first = api.call("GET", "/api/episodes", params={"limit": 2}).json()
    second = api.call("GET", "/api/episodes", params={"limit": 2, "cursor": first["next_cursor"]})
    assert second.status_code == 200 and len(second.json()["items"]) == 1


BAD_BODIES = {
    "lone surrogate in patient_ref": (b'{"patient_ref": "MRN-\\ud800"}', "patient_ref"),
    "lone surrogate in label": (b'{"patient_ref": "MRN-1", "label": "\\udfff"}', "label"),
    "NUL in label": (b'{"patient_ref": "MRN-1", "label": "a\\u0000b"}', "label"),
    "tab in patient_ref": (b'{"patient_ref": "MRN\\t1"}', "patient_ref"),
    "long label": (orjson.dumps({"patient_ref": "MRN-1", "label": "x" * 201}), "label"),
    "long patient_ref": (orjson.dumps({"patient_ref": "M" * 101}), "patient_ref"),
    "year 1 at +14:00": (b'{"patient_ref": "M", "at": "0001-01-01T00:00:00+14:00"}', "at"),
    "year 9999": (b'{"patient_ref": "M", "at": "9999-12-31T23:00:00Z"}', "at"),
    "surrogate fact name": (b'{"patient_ref": "M", "facts": {"\\ud800": 1}}', "facts"),
    "surrogate fact value": (b'{"patient_ref": "M", "facts": {"sex": "\\ud800"}}', "facts"),
}


def test_a_bad_body_is_a_422_naming_the_field(api_on: ApiWorld) -> None:
    for name, (body, field) in BAD_BODIES.items():  # one app per database: every body on it
        response = api_on.call(
            "POST", "/api/episodes", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, (name, response.text)
        assert response.json()["field"].startswith(field), name
    assert api_on.call("GET", "/api/episodes").json()["items"] == []  # nothing was opened


def test_a_note_may_span_lines_but_holds_no_nul(api: ApiWorld) -> None:
    episode = api.open_episode()
    path = f"/api/episodes/{episode}/tasks/no-such-task"
    refused = api.call("POST", path, json={"status": "done", "note": "a\x00b"})
    assert refused.status_code == 422 and refused.json()["field"] == "note"
    accepted = api.call("POST", path, json={"status": "done", "note": "line 1\nline 2"})
    assert accepted.status_code != 422 or accepted.json()["field"] != "note"


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/episodes", "GET, OPTIONS, POST"),
        ("/api/tokens", "GET, OPTIONS, POST"),
        ("/api/episodes/e1", "GET, OPTIONS"),
        ("/api/episodes/e1/observations", "OPTIONS, POST"),
        ("/api/tokens/t1", "DELETE, OPTIONS"),
    ],
)
def test_options_and_405_list_every_method_of_the_path(
    api: ApiWorld, path: str, allow: str
) -> None:
    options = api.client.options(path)  # the first request of the app, too
    assert options.status_code == 204 and options.headers["allow"] == allow
    wrong = api.call("PATCH", path)
    assert wrong.status_code == 405 and wrong.headers["allow"] == allow


def test_options_on_no_path_is_a_404(api: ApiWorld) -> None:
    assert api.client.options("/api/nothing-here").status_code == 404


def test_the_docs_page_needs_nothing_from_the_internet_and_has_a_csp(api: ApiWorld) -> None:
    page = api.client.get("/api/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no absolute URL
    assert "<script>" not in page.text  # no inline script: the CSP forbids them
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs-init.js"):
        assert f"{ASSETS_URL}/{asset}" in page.text
        served = api.client.get(f"{ASSETS_URL}/{asset}")
        assert served.status_code == 200 and len(served.content) > 100


def test_the_schema_lists_each_pathways_facts_actions_and_reasons(api: ApiWorld) -> None:
    schema = api.client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    facts = components["Observe"]["properties"]["facts"]
    assert facts["additionalProperties"] is False
    assert {"pain_score", "vertebral_collapse_pct"} <= set(facts["properties"])  # L1–L2
    assert {"fracture_site", "dxa_done"} <= set(facts["properties"])  # fracture liaison
    assert facts["properties"]["pain_score"]["maximum"] == 10
    opening = {v["title"]: v["properties"] for v in components["OpenEpisode"]["anyOf"]}
    assert "fracture_site" in opening["fracture-liaison"]["facts"]["properties"]
    assert "fracture_site" not in opening["l1-l2-compression-fracture"]["facts"]["properties"]
    assert set(components["RequestAction"]["properties"]["action"]["enum"]) >= {"vertebroplasty"}
    assert "declined" in components["Close"]["properties"]["reason"]["enum"]
    pathways = schema["info"]["x-pathways"]
    assert set(pathways) == {"l1-l2-compression-fracture", "fracture-liaison"}
    assert "fracture_site" in pathways["fracture-liaison"]["facts"]
    cursor = next(p for p in schema["paths"]["/api/episodes"]["get"]["parameters"]
                  if p["name"] == "cursor")  # fmt: skip
    assert "pattern" in str(cursor["schema"])


def test_coordinators_read_the_history_the_page_shows_them(api: ApiWorld) -> None:
    episode = api.open_episode()
    history = api.call("GET", f"/api/episodes/{episode}/history", role="coordinator")
    assert history.status_code == 200
    assert [e["actor"] for e in history.json()][0] == "token:coordinator-1"
    for path in ("/api/audit/verify", "/api/audit/export"):  # the whole log stays with auditors
        assert api.call("GET", path, role="coordinator").status_code == 403
