"""The composition root: every entry point gets its wiring here, built one way.

settings (``carepath.settings``, from the environment) → every pathway's current definition (the
shipped files, and the configured ones, which replace a shipped pathway of the same id) →
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
from pathlib import Path
from typing import TYPE_CHECKING

from carepath.settings import Settings
from pathway.definition import Definition, load_definition, shipped_definition_files
from pathway.registry import DefinitionRegistry

if TYPE_CHECKING:  # storage (SQLAlchemy, Alembic) is imported only by what opens a database:
    from pathway.audit import AuditKey
    from storage.unit_of_work import SqlUnitOfWorkFactory  # an in-memory replay never does


@dataclass(frozen=True, slots=True)
class Wiring:
    """What a process needs to run use cases: units of work and the definitions they run on."""

    uow_factory: SqlUnitOfWorkFactory
    definitions: DefinitionRegistry

    def dispose(self) -> None:
        self.uow_factory.dispose()


def current_definitions(settings: Settings | None = None) -> list[Definition]:
    """The current definition of every pathway: the shipped files, then the configured ones
    (``CAREPATH_DEFINITIONS``, ``CAREPATH_DEFINITION``), a later file of an id replacing an
    earlier one."""
    settings = settings or Settings.from_env()
    by_id: dict[str, Definition] = {}
    for path in [*shipped_definition_files(), *settings.definition_files()]:
        definition = load_definition(path)
        by_id[definition.id] = definition
    return list(by_id.values())


def current_definition(settings: Settings | None = None) -> Definition:
    """The current definition of the default pathway."""
    return DefinitionRegistry(current_definitions(settings)).current


def open_database(
    url: str | None = None, audit_key: AuditKey | None = None
) -> SqlUnitOfWorkFactory:
    """The unit-of-work factory on ``url`` (default: ``CAREPATH_DATABASE_URL``), migrated to
    the latest schema if needed, writing and verifying its audit chains under ``audit_key``
    (default: the configured one, ``Settings.audit_key``)."""
    from storage.unit_of_work import uow_factory

    settings = Settings.from_env()
    url = url or settings.database_url
    if audit_key is None:
        audit_key = settings.audit_key()
        refuse_key_beside_database(settings, url)
    return uow_factory(url, audit_key)


def refuse_key_beside_database(settings: Settings, url: str) -> None:
    """A key file in the SQLite database's own directory would be copied with it."""
    from carepath.audit_keys import KEY_FILE_NAME, AuditKeyError

    if settings.audit_key_text or not url.startswith("sqlite:///"):
        return
    database = Path(url.removeprefix("sqlite:///").split("?")[0])
    key_file = settings.audit_key_file or settings.configuration() / KEY_FILE_NAME
    if database.name and database.resolve().parent == key_file.resolve().parent:
        raise AuditKeyError(
            f"audit key file {key_file}: it is in the database's directory, expected a "
            "directory the database is not in (CAREPATH_AUDIT_KEY_FILE)"
        )


def wire(
    settings: Settings | None = None,
    *,
    current: Definition | list[Definition] | None = None,
    factory: SqlUnitOfWorkFactory | None = None,
) -> Wiring:
    """The wiring of ``settings`` (default: the environment's).

    ``current`` is the definitions new episodes open on (default: every pathway's current one);
    ``factory`` an existing unit-of-work factory to share (default: one on the configured
    database, which the caller then owns and disposes of).
    """
    if current is None:
        settings = settings or Settings.from_env()
        current = current_definitions(settings)
    if factory is None:
        settings = settings or Settings.from_env()
        refuse_key_beside_database(settings, settings.database_url)
        factory = open_database(settings.database_url, settings.audit_key())
    from storage.definitions import registry_for

    return Wiring(factory, registry_for(factory, current))
