"""Scheduling only: when to sweep and who fires, never the only copy of anything.

``service`` runs APScheduler sweeps and heartbeats; ``worker`` claims episodes with due timers
and fires them through the use cases, exactly once (claims, batches and their SQL are in
``storage``); ``status`` reports workers, due and parked timers; ``embedded`` runs it all
inside the server, on a wiring ``carepath.bootstrap`` hands it.
"""
