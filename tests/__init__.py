"""carepath's tests, by layer: ``unit`` (the pure pathway and its add-ons, on the in-memory
unit of work), ``integration`` (storage, the scheduler, the API and the pages on real SQLite
and PostgreSQL), ``e2e`` (scenario files replayed through the CLI); ``support`` is shared."""
