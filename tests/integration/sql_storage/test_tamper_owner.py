"""The owner column edited directly is caught by ``audit verify``: only an audited ``assign``
sets it, so its value is rebuilt from the log (``pathway.audit_rebuild``) on both databases."""

from __future__ import annotations

import pytest

from pathway import usecases
from pathway.model import Assign
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory
from tests.integration.sql_storage.test_tamper_rows import run_verify, sql
from tests.support.episode_driver import DEFS, day, in_care


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ("owner = 'mallory'", "owner is 'mallory', expected 'alice'"),
        ("owner = NULL", "owner is None, expected 'alice'"),
    ],
)
def test_an_owner_edited_in_the_table_is_caught_and_the_chain_alone_does_not_see_it(
    database_url: str, edit: str, words: str
) -> None:
    made: SqlUnitOfWorkFactory = uow_factory(database_url)
    in_care(made, "ep-1")
    event = Assign("as-1", day(1), "nurse", "alice")
    usecases.handle(made(), DEFS, "ep-1", event, day(1))
    assert run_verify(made).exit_code == 0
    sql(made, f"UPDATE episodes SET {edit} WHERE id = 'ep-1'")
    full, chain = run_verify(made), run_verify(made, "--chain-only")
    made.dispose()
    assert full.exit_code == 1, full.output
    assert f"episode ep-1: {words}" in full.output
    assert chain.exit_code == 0, chain.output  # the rows step caught it, not the chain
