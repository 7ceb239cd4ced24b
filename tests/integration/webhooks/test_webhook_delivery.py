"""Webhooks end to end on SQLite and PostgreSQL: decisions write outbox rows in their own
transaction; workers deliver them signed (every signature checked with the ``standardwebhooks``
package); a receiver down for a while loses nothing; a worker SIGKILLed mid-delivery loses
nothing and duplicates carry the same webhook-id; a message retried past its period fails and
is counted by ``scheduler status``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from carepath import webhooks
from pathway.audit import AuditKey
from pathway.usecases import DefinitionRegistry
from scheduler.deliveries import DeliveryPolicy, DeliveryWorker
from scheduler.status import scheduler_status
from scheduler.worker import TimerWorker
from storage.unit_of_work import uow_factory
from storage.webhooks import WebhookStore
from tests.support.timer_cohort import EXTRA, NOW, busy_definition, open_idle_episodes
from tests.support.webhook_receiver import Receiver

DEFS = DefinitionRegistry(busy_definition())
KEY = AuditKey(b"k" * 32)
FAST = DeliveryPolicy(
    timeout=2.0, backoff=timedelta(seconds=0.05), backoff_cap=timedelta(seconds=0.2),
    lease_margin=30.0,
)  # fmt: skip
# A lease outlasts any stall of a loaded machine (a lapsed lease sends a message twice); every
# recorded attempt releases its lease, so a long one costs these tests nothing. Deadlines below
# are hang guards only.
HANG = 60


@pytest.fixture
def factory(database_url: str):
    f = uow_factory(database_url, KEY)
    yield f
    f.dispose()


@pytest.fixture
def receiver():
    r = Receiver().up()
    yield r
    r.close()


def _subscribe(factory, receiver: Receiver, events: str, **kw) -> str:
    sub, secret = webhooks.add(
        WebhookStore(factory), KEY, receiver.url, events, "t", datetime.now(UTC), **kw
    )
    receiver.secrets.append(secret)
    return sub.id


def _escalate(factory, episodes: int) -> int:
    """Open idle episodes and fire their timers: each firing opens an escalation."""
    open_idle_episodes(factory, DEFS, episodes)
    return TimerWorker(factory, DEFS).sweep(NOW)


def _deliver_until(worker: DeliveryWorker, receiver: Receiver, expected: int, seconds: float):
    deadline = time.monotonic() + seconds
    while len(set(receiver.ids())) < expected and time.monotonic() < deadline:
        worker.deliver_due(datetime.now(UTC))
        time.sleep(0.02)


def test_each_decision_raises_signed_messages_for_matching_subscriptions_only(
    factory, receiver: Receiver
) -> None:
    wanted = _subscribe(factory, receiver, "escalation.opened", include_patient_ref=True)
    _subscribe(factory, receiver, "episode.transferred")  # raises nothing here
    fired = _escalate(factory, 3)
    assert fired == 3 * (EXTRA + 1)
    assert WebhookStore(factory).counts()["pending"] == fired  # one per escalation, one sub
    worker = DeliveryWorker(factory, KEY, FAST)
    _deliver_until(worker, receiver, fired, HANG)
    worker.close()
    assert receiver.bad_signatures == 0
    assert len(receiver.ids()) == len(set(receiver.ids())) == fired
    body = receiver.got[0].body
    assert body["type"] == "escalation.opened"
    assert set(body) == {"type", "timestamp", "data"}
    data = body["data"]
    assert {"episode", "pathway", "state", "rule", "citation"} <= set(data)
    assert data["pathway"] == "l1-l2-compression-fracture"
    assert set(data) <= {"episode", "pathway", "state", "rule", "citation", "task", "task_status"}
    assert all(r.id.endswith("." + wanted) for r in receiver.got)
    assert WebhookStore(factory).counts() == {"pending": 0, "delivered": fired, "failed": 0}


def test_patient_ref_only_reaches_subscriptions_that_asked_for_it(
    factory, receiver: Receiver
) -> None:
    from pathway import usecases

    _subscribe(factory, receiver, "escalation.opened")
    at = NOW - timedelta(days=30)
    usecases.open_episode(
        factory(), DEFS, {"age": 70}, at=at, now=at, actor="t", patient_ref="MRN-77"
    )
    TimerWorker(factory, DEFS).sweep(NOW)
    worker = DeliveryWorker(factory, KEY, FAST)
    _deliver_until(worker, receiver, EXTRA + 1, HANG)
    worker.close()
    assert receiver.got and all("patient_ref" not in r.body["data"] for r in receiver.got)
    assert "MRN-77" not in str([r.body for r in receiver.got])


def test_a_receiver_down_for_a_while_then_up_loses_nothing(factory, receiver: Receiver) -> None:
    _subscribe(factory, receiver, "escalation.opened")
    fired = _escalate(factory, 2)
    receiver.down()  # connections refused
    worker = DeliveryWorker(factory, KEY, FAST)
    for _ in range(4):
        assert worker.deliver_due(datetime.now(UTC)) == 0
        time.sleep(0.06)
    store = WebhookStore(factory)
    assert store.counts()["pending"] == fired
    some = store.failed_messages()  # none failed: still within the retry period
    assert some == []
    receiver.up()  # the same port again
    _deliver_until(worker, receiver, fired, HANG)
    worker.close()
    assert len(set(receiver.ids())) == fired and receiver.bad_signatures == 0
    assert store.counts()["delivered"] == fired


def test_a_message_retried_past_its_period_fails_and_status_counts_it(
    factory, receiver: Receiver
) -> None:
    _subscribe(factory, receiver, "escalation.opened")
    fired = _escalate(factory, 1)
    receiver.status = 500
    policy = DeliveryPolicy(
        timeout=2.0, backoff=timedelta(seconds=10), retry_for=timedelta(minutes=1),
        lease_margin=30.0,
    )  # fmt: skip
    # The worker's clock, not the wall's, says when the period is over: the first attempts now
    # (well within the minute however loaded the machine: retried in 10 s), the next ones with
    # the worker's clock two minutes on (past the period: failed). Within the receiver's
    # five minutes' signature tolerance, so it still answers 500.
    worker = DeliveryWorker(factory, KEY, policy)
    worker.deliver_due(datetime.now(UTC))
    assert WebhookStore(factory).counts() == {"pending": fired, "delivered": 0, "failed": 0}
    worker.deliver_due(datetime.now(UTC) + timedelta(minutes=2))
    worker.close()
    report = scheduler_status(factory, datetime.now(UTC))["webhooks"]
    assert report["failed"] == fired and report["pending"] == 0
    first = report["failed_messages"][0]
    assert first["type"] == "escalation.opened" and first["last_status"] == 500
    assert first["attempts"] >= 2
    assert receiver.got == []


def test_two_workers_never_have_two_attempts_of_one_message_in_flight(
    factory, database_url: str, receiver: Receiver
) -> None:
    _subscribe(factory, receiver, "escalation.opened")
    fired = _escalate(factory, 2)
    receiver.delay = 0.05
    other = uow_factory(database_url, KEY)
    workers = [DeliveryWorker(f, KEY, FAST) for f in (factory, other)]
    threads = [
        threading.Thread(target=_deliver_until, args=(w, receiver, fired, HANG)) for w in workers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    other.dispose()
    assert receiver.max_in_flight == 1
    assert sorted(receiver.ids()) == sorted(set(receiver.ids())) and len(receiver.ids()) == fired
    assert sum(w.delivered_total for w in workers) == fired


_SENDER = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathway.audit import AuditKey
from scheduler.deliveries import DeliveryPolicy, DeliveryWorker
from storage.unit_of_work import uow_factory
policy = DeliveryPolicy(timeout=0.8, backoff=timedelta(seconds=0.05), lease_margin=0.3, batch=4)
worker = DeliveryWorker(uow_factory(sys.argv[1], AuditKey(b"k" * 32)), AuditKey(b"k" * 32), policy)
while True:
    worker.deliver_due(datetime.now(UTC))
    time.sleep(0.02)
"""


def test_a_worker_killed_mid_delivery_loses_nothing(
    factory, database_url: str, receiver: Receiver
) -> None:
    _subscribe(factory, receiver, "escalation.opened")
    fired = _escalate(factory, 2)
    receiver.hold = threading.Event()  # no answer until the victim is dead: it records nothing
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    victim = subprocess.Popen([sys.executable, "-c", _SENDER, database_url], env=env)
    try:
        assert receiver.arrived.wait(HANG), "the victim never posted"
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
    finally:
        if victim.poll() is None:
            victim.kill()
        receiver.hold.set()
    assert victim.returncode == -signal.SIGKILL
    receiver.settle()  # every request the dead worker made has been answered (or dropped)
    taken = set(receiver.ids())  # received, but the victim died before recording it
    survivor, store = DeliveryWorker(factory, KEY, FAST), WebhookStore(factory)
    deadline = time.monotonic() + HANG
    while store.counts()["pending"] and time.monotonic() < deadline:  # the victim's leases lapse
        survivor.deliver_due(datetime.now(UTC))
        time.sleep(0.05)
    survivor.close()
    ids = receiver.ids()
    assert len(set(ids)) == fired  # every message arrived
    duplicates = {m for m in ids if ids.count(m) > 1}
    assert taken, "the victim had nothing in flight when it was killed"
    assert duplicates == taken  # only what the victim sent unrecorded, again under its webhook-id
    assert receiver.bad_signatures == 0
    assert WebhookStore(factory).counts() == {"pending": 0, "delivered": fired, "failed": 0}
