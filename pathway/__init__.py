"""The pathway itself, pure: no database, web, scheduler, clock or thread.

The core, at this package's top: ``vocabulary`` (the facts a definition knows), ``criteria``
(declarative trees that return their evidence), ``graph`` (one shared state machine per
definition version), ``definition`` and ``definition_builder`` (a definition file loaded,
validated and versioned by content), ``model`` (episodes, events, decisions), ``work`` and
``engine`` (``decide``: an event on an episode → a ``Decision``), ``audit`` (hash-chained
entries), ``errors`` (one ``PathwayError`` tree), ``unit_of_work`` (the Protocol storage
implements, and the in-memory one) and ``usecases`` (each one transaction; ``handle``, the one
command handler every entry point calls).

Add-ons beside it, which the core never imports: ``checking`` (the exhaustive safety check),
``migration`` (moving running episodes to another definition version), ``diagram`` (mermaid).
"""
