"""The exhaustive checker, an add-on beside the engine: does a definition keep its safety properties?

- ``abstraction``: the finite picture a definition's criteria can tell apart (witness values,
  regions, the facts that matter in each state).
- ``clocks``: its day counts and date facts, and the days where their regions begin.
- ``safety``: the definition's declared safety properties, judged on one decision at a time.
- ``report``: the report and its counterexamples (scenario files ``carepath replay`` runs).
- ``explore``: ``check_definition``, which drives the real engine breadth-first over that picture
  and reports every decision that breaks a property, with a replayable counterexample.

Nothing in the engine imports this package; ``carepath definition check`` does.
"""
