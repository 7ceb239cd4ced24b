"""SQL persistence: the pathway's unit of work on SQLite and PostgreSQL, on the raw drivers.

``unit_of_work`` (with ``backends``, ``reads``, ``writes``) is the ``pathway.unit_of_work``
Protocol over SQL: one use case, one transaction, version-checked. Every hand-written
statement is in ``sql/queries.sql``. ``batch`` and ``claims`` are what the scheduler's workers
write through (many timers in one transaction; claims with a lease, parking, heartbeats);
``access`` (API tokens), ``worklist`` and ``definitions`` (stored definition versions) are the
other readers and writers. ``tables`` and ``migrations/`` are the schema; ``postgres_cluster``
starts a throwaway PostgreSQL for tests and benchmarks.
"""
