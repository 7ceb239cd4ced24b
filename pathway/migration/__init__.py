"""Moving running episodes to another version of their definition, an add-on beside the engine.

- ``plan``: what moving one episode means (state mapping, timers re-timed, cancelled or added),
  worked out without touching anything, then turned into an ordinary ``Decision``.
- ``usecases``: one episode in one transaction, or every running episode, planned before any
  is written.

Nothing in the engine imports this package; ``carepath definition migrate`` does.
"""
