"""The coordinator pages: server-rendered HTML over the same services as the JSON API.

``pages.install_pages(app)`` mounts them on an app made by ``carepath.api.app.create_api``
(``carepath.server.build_app`` does). Modules: ``session`` (server-side sessions, CSRF),
``pages`` (sign-in, worklist and episode reads), ``page_commands`` (the forms),
``worklist_page``/``worklist_rows`` (what the worklist lists and why), ``episode_page``,
``timeline``, ``pathway_map`` and ``observation_form`` (what the episode page shows),
``rendering`` (templates and filters). ``static/`` holds the stylesheet and vendored htmx.
"""
