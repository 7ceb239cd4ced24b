"""The outbox is written in the decision's own transaction, on SQLite and PostgreSQL: a
decision committed has its messages, one that is not (a concurrent writer moved the episode)
has none; an episode ended by a close raises ``episode.ended`` once per matching subscription."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carepath import webhooks
from pathway import usecases
from pathway.audit import AuditKey, entry_for
from pathway.engine import decide
from pathway.errors import ConcurrencyConflict
from pathway.model import Close
from pathway.notifications import notices_for
from pathway.unit_of_work import Change, Outcome
from pathway.usecases import DefinitionRegistry
from storage.unit_of_work import uow_factory
from storage.webhooks import WebhookStore
from tests.support.timer_cohort import busy_definition

DEFS = DefinitionRegistry(busy_definition())
KEY = AuditKey(b"k" * 32)
AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def factory(database_url: str):
    f = uow_factory(database_url, KEY)
    yield f
    f.dispose()


def _messages(factory) -> list[dict]:
    with factory.engine.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT subscription_id, event_type, episode_id, status FROM webhook_messages"
        ).fetchall()
    return [dict(zip(("sub", "type", "episode", "status"), r, strict=True)) for r in rows]


def test_a_decision_that_is_not_committed_writes_no_message(factory) -> None:
    store = WebhookStore(factory)
    ended, _ = webhooks.add(store, KEY, "https://h.example.org/a", "episode.ended", "t", AT)
    webhooks.add(store, KEY, "https://h.example.org/b", "escalation.opened", "t", AT)
    opened = usecases.open_episode(factory(), DEFS, {"age": 70}, at=AT, now=AT, actor="t")
    eid = opened.outcome.episode_id
    with factory() as uow:
        stale = uow.get_episode(eid)
    later = AT + timedelta(hours=1)
    usecases.close(factory(), DEFS, eid, "declined", at=later, now=later, actor="t")
    assert [(m["sub"], m["type"], m["episode"]) for m in _messages(factory)] == [
        (ended.id, "episode.ended", eid)
    ]
    definition = DEFS.get(stale.definition_version)
    decision = decide(definition, stale, Close("ev-stale", later, "t", "declined"), later)
    record = entry_for(decision, later, key=KEY)
    decision.episode.audit_hash = record.hash
    notices = tuple(notices_for(definition, decision))
    assert [n.type for n in notices] == ["episode.ended"]
    with factory() as uow:
        uow.save(Change(decision, record, Outcome.of(decision), notices))
        with pytest.raises(ConcurrencyConflict):
            uow.commit()
    assert len(_messages(factory)) == 1  # the conflicting decision's message was not written


def test_a_decision_nobody_subscribed_to_writes_nothing(factory) -> None:
    opened = usecases.open_episode(factory(), DEFS, {"age": 70}, at=AT, now=AT, actor="t")
    later = AT + timedelta(hours=1)
    usecases.close(factory(), DEFS, opened.outcome.episode_id, "declined", at=later, now=later,
                   actor="t")  # fmt: skip
    assert _messages(factory) == []


def test_an_enrolment_writes_episode_enrolled_with_the_patient_ref_only_where_asked(
    factory,
) -> None:
    from tests.integration.sql_storage.test_enrolment import FLS, open_l1, to_care

    store = WebhookStore(factory)
    plain, _ = webhooks.add(store, KEY, "https://h.example.org/a", "episode.enrolled", "t", AT)
    named, _ = webhooks.add(
        store, KEY, "https://h.example.org/b", "episode.enrolled", "t", AT, include_patient_ref=True
    )
    open_l1(factory)
    applied = to_care(factory)
    assert applied.enrolled  # the decision opened an FLS episode
    with factory.engine.connect() as db:
        rows = db.exec_driver_sql(
            "SELECT subscription_id, event_type, payload, patient_ref FROM webhook_messages"
        ).fetchall()
    got = {r[0]: r for r in rows}
    assert set(got) == {plain.id, named.id}
    assert all(r[1] == "episode.enrolled" for r in rows)
    assert got[plain.id][3] is None and got[named.id][3] == "MRN-1"
    assert f'"pathway":"{FLS}"' in got[plain.id][2] and "MRN-1" not in got[plain.id][2]


def test_a_subscription_added_by_another_process_gets_notices_within_a_second(
    factory, database_url: str
) -> None:
    def close_one(i: int) -> None:
        opened = usecases.open_episode(factory(), DEFS, {"age": 70}, at=AT, now=AT, actor="t")
        later = AT + timedelta(hours=1, seconds=i)
        usecases.close(factory(), DEFS, opened.outcome.episode_id, "declined", at=later,
                       now=later, actor="t")  # fmt: skip

    close_one(0)  # this process now knows there is no subscription (PostgreSQL: for a second)
    other = uow_factory(database_url, KEY)  # another process's wiring
    webhooks.add(WebhookStore(other), KEY, "https://h.example.org/a", "episode.ended", "t", AT)
    other.dispose()
    import time

    time.sleep(1.1)
    close_one(1)
    assert [m["type"] for m in _messages(factory)] == ["episode.ended"]
