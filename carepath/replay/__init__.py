"""Scenario files and their replay on a virtual clock (the format is SCENARIOS.md).

- ``scenario``: a file parsed and checked before anything runs.
- ``runner``: a scenario run through the real use cases, timers firing as the scheduler would,
  giving the output object of SCENARIOS.md and the expectations that failed.
"""
