"""The composition root: every entry point gets its wiring here, built one way.

settings (``carepath.settings``, from the environment) → the configured definition file →
the unit-of-work factory on the configured database (schema migrated if fresh) → the definition
registry of that database (the file's version recorded if it is new, beside every version the
database has seen, so that episodes pinned to an older version run too).

The CLI commands, the HTTP API (``carepath.api.app``), the server (``carepath.server``) and,
through it, the embedded scheduler take a ``Wiring`` from ``wire`` instead of assembling one.
The ``scheduler`` package is below this one and never imports it: it is handed a ``Wiring``'s
parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from carepath.settings import Settings
from pathway.definition import Definition, load_definition
from pathway.usecases import DefinitionRegistry
from storage.definitions import registry_for
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory


@dataclass(frozen=True, slots=True)
class Wiring:
    """What a process needs to run use cases: units of work and the definitions they run on."""

    uow_factory: SqlUnitOfWorkFactory
    definitions: DefinitionRegistry

    def dispose(self) -> None:
        self.uow_factory.dispose()


def current_definition(settings: Settings | None = None) -> Definition:
    """The configured definition file (``CAREPATH_DEFINITION``, else the shipped pathway)."""
    return load_definition((settings or Settings.from_env()).definition_path)


def open_database(url: str | None = None) -> SqlUnitOfWorkFactory:
    """The unit-of-work factory on ``url`` (default: ``CAREPATH_DATABASE_URL``), migrated to
    the latest schema if needed."""
    return uow_factory(url or Settings.from_env().database_url)


def wire(
    settings: Settings | None = None,
    *,
    current: Definition | None = None,
    factory: SqlUnitOfWorkFactory | None = None,
) -> Wiring:
    """The wiring of ``settings`` (default: the environment's).

    ``current`` is the definition new episodes open on (default: the configured file);
    ``factory`` an existing unit-of-work factory to share (default: one on the configured
    database, which the caller then owns and disposes of).
    """
    if current is None:
        settings = settings or Settings.from_env()
        current = current_definition(settings)
    if factory is None:
        factory = open_database((settings or Settings.from_env()).database_url)
    return Wiring(factory, registry_for(factory, current))
