"""``/api/docs``: the interactive API documentation, from Swagger UI files carepath ships.

FastAPI's own docs page loads Swagger UI from a CDN (a hospital network without internet gets
a blank page) and starts it with an inline script. Here the assets are vendored under
``carepath/web/static/swagger-ui`` (see ``VENDORED.md``), served at ``/api/docs/assets``, the
start-up is a file too, and the page carries a Content-Security-Policy that allows nothing but
this server: scripts, styles, images and the fetch of ``/openapi.json``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent.parent / "web" / "static" / "swagger-ui"
ASSETS_URL = "/api/docs/assets"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
)
# Swagger UI sets styles on its elements as it renders (hence 'unsafe-inline' for style only).


def docs_page(openapi_url: str, title: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} · API docs</title>
  <link rel="icon" href="{ASSETS_URL}/favicon-32x32.png">
  <link rel="stylesheet" href="{ASSETS_URL}/swagger-ui.css">
  <script src="{ASSETS_URL}/swagger-ui-bundle.js" defer></script>
  <script src="{ASSETS_URL}/docs-init.js" defer></script>
</head>
<body data-openapi="{openapi_url}">
  <div id="swagger-ui"></div>
</body>
</html>
"""


def install_docs(app: FastAPI, path: str = "/api/docs") -> None:
    """Serve the docs page at ``path`` and its assets at ``ASSETS_URL``."""
    html = docs_page(app.openapi_url or "/openapi.json", app.title)

    def docs() -> HTMLResponse:
        return HTMLResponse(
            html,
            headers={
                "Content-Security-Policy": DOCS_CSP,
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    app.add_api_route(path, docs, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="swagger-ui")
