"""What people run: the composition root, the CLI, the HTTP API, the pages and replay.

``bootstrap`` wires settings → definitions → unit-of-work factory for every entry point;
``cli/`` is the ``carepath`` command, ``api/`` the JSON API, ``web/`` the coordinator pages,
``server`` all of it in one process with an embedded scheduler, ``replay/`` scenario files on a
virtual clock, ``fhir/`` one-way FHIR exports, ``demo`` a demo cohort. Entry points parse, call
one use case (``pathway.usecases.handle`` for commands) and render; no clinical logic here.
"""
