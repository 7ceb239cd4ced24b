"""Rewriting history in the database is refused, and when forced, the chain names the entry.

The audit log's triggers refuse UPDATE and DELETE outright. Someone with the rights to drop
them (as an attacker with the table owner's rights could) can change a payload, delete an entry
or swap two entries' places; ``verify_chain`` then names the first entry that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import DBAPIError

from pathway.audit import ChainCheck, verify_chain
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from tests.support.episode_driver import in_care

DROP_TRIGGERS = {
    "sqlite": ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"],
    "postgresql": ["DROP TRIGGER audit_log_no_change ON audit_log"],
}


@pytest.fixture
def factory(database_admin_url: str) -> SqlUnitOfWorkFactory:
    make_uow = uow_factory(database_admin_url)  # PostgreSQL: the superuser, who may drop triggers
    course = in_care(make_uow, "ep-1")
    for d, pain in ((2, 7), (3, 6), (4, 5)):
        course.observe({"pain_score": pain}, d)  # entries 1..5
    return make_uow


def sql(factory: SqlUnitOfWorkFactory, *statements: str) -> None:
    with factory.engine.begin() as db:
        for statement in statements:
            db.exec_driver_sql(statement)


def tamper(factory: SqlUnitOfWorkFactory, *statements: str) -> ChainCheck:
    sql(factory, *DROP_TRIGGERS[factory.engine.dialect.name], *statements)
    with factory() as uow:
        episode = uow.get_episode("ep-1")
        return verify_chain(
            "ep-1",
            uow.audit_records("ep-1"),
            (episode.version, episode.audit_hash),
            key=uow.audit_key,
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 5",
    ],
    ids=["update", "delete"],
)
def test_the_audit_log_refuses_changes(factory: SqlUnitOfWorkFactory, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        sql(factory, statement)
    with factory() as uow:
        assert len(uow.audit_records("ep-1")) == 5


def test_an_untouched_chain_verifies(factory: SqlUnitOfWorkFactory) -> None:
    assert tamper(factory).ok


def test_a_changed_payload_is_named(factory: SqlUnitOfWorkFactory) -> None:
    check = tamper(
        factory,
        "UPDATE audit_log SET payload = replace(payload, "
        "'\"pain_score\":6', '\"pain_score\":2') WHERE seq = 4",
    )
    assert (check.ok, check.bad_seq) == (False, 4)
    assert "entry 4 was altered" in check.problem


def test_a_changed_column_is_named(factory: SqlUnitOfWorkFactory) -> None:
    check = tamper(factory, "UPDATE audit_log SET state_to = 'discharged' WHERE seq = 3")
    assert (check.ok, check.bad_seq) == (False, 3)
    assert "state_to column disagrees" in check.problem


def test_a_deleted_entry_is_named(factory: SqlUnitOfWorkFactory) -> None:
    check = tamper(factory, "DELETE FROM audit_log WHERE seq = 2")
    assert not check.ok
    assert "where entry 2 was expected" in check.problem


def test_a_deleted_last_entry_is_named_by_the_episode_head(factory: SqlUnitOfWorkFactory) -> None:
    check = tamper(factory, "DELETE FROM audit_log WHERE seq = 5")
    assert (check.ok, check.bad_seq) == (False, 5)
    assert "entry 5 is missing" in check.problem


def test_two_swapped_entries_are_named(factory: SqlUnitOfWorkFactory) -> None:
    swap: Callable[[int, int], str] = "UPDATE audit_log SET seq = {} WHERE seq = {}".format
    check = tamper(factory, swap(-1, 2), swap(2, 3), swap(3, -1))
    assert (check.ok, check.bad_seq) == (False, 2)
    assert "entry 2 does not link to entry 1" in check.problem
