"""Webhook delivery: latency (decision committed → receiver got it) under a steady load, and the
outbox's throughput per worker, beside raw signed HTTP POSTs to the same receiver measured in the
same run.

The receiver (``tests/support/webhook_receiver.py``, a thread) verifies every signature with the
``standardwebhooks`` package, for the baseline's requests too. Our side is the real thing:
decisions through the use cases (an episode's due timers fired: each opens an escalation, each
escalation one outbox row in the decision's transaction), ``DeliveryWorker`` claiming under a
lease, signing, posting, recording.

- throughput: N messages already in the outbox, drained by one worker (batch 8 in parallel, the
  default; and batch 1, sequential); baseline: N raw POSTs from one thread.
- latency: a steady load of decisions (``--rate`` episodes/s, 11 escalations each) while a
  worker polls every ``--poll`` seconds (CAREPATH_WEBHOOK_POLL_SECONDS, default 1): p50/p95 of
  commit → arrival; baseline: the raw POST's own round trip.

Run:  .venv/bin/python bench/bench_webhooks.py [--database sqlite|postgres] [--messages 2200]
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carepath import webhooks  # noqa: E402
from pathway import usecases  # noqa: E402
from pathway.audit import AuditKey  # noqa: E402
from pathway.usecases import DefinitionRegistry  # noqa: E402
from scheduler.deliveries import DeliveryPolicy, DeliveryWorker, http_post, signature  # noqa: E402
from storage.postgres_cluster import postgres_server  # noqa: E402
from storage.unit_of_work import uow_factory  # noqa: E402
from storage.webhook_secrets import PREFIX  # noqa: E402
from storage.webhooks import WebhookStore  # noqa: E402
from tests.support.timer_cohort import EXTRA, busy_definition  # noqa: E402
from tests.support.webhook_receiver import Receiver  # noqa: E402

DEFS = DefinitionRegistry(busy_definition())
KEY = AuditKey(b"b" * 32)
PER_EPISODE = EXTRA + 1


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    with postgres_server() as url:
        yield url


def escalate(factory, n_episodes: int, start: int = 0) -> list[tuple[str, float]]:  # noqa: ANN001
    """Open episodes a month back and fire their timers; (episode id, commit time) each."""
    now = datetime.now(UTC)
    out = []
    for i in range(start, start + n_episodes):
        at = now - timedelta(days=30) + timedelta(seconds=i)
        opened = usecases.open_episode(factory(), DEFS, {"age": 70}, at=at, now=at, actor="b")
        eid = opened.outcome.episode_id
        usecases.fire_due_timers(factory(), DEFS, now, episode_id=eid)
        out.append((eid, time.monotonic()))
    return out


def baseline(receiver: Receiver, secret: str, n: int) -> tuple[float, list[float]]:
    """n raw signed POSTs from one thread: requests/s and each one's round trip (ms)."""
    key = __import__("base64").b64decode(secret.removeprefix(PREFIX))
    body = b'{"type":"escalation.opened","timestamp":"2026-01-01T00:00:00+00:00","data":{}}'
    took = []
    started = time.perf_counter()
    for i in range(n):
        mid, stamp = f"msg_raw{i}", int(time.time())
        headers = {"content-type": "application/json", "webhook-id": mid,
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": signature(key, mid, stamp, body)}  # fmt: skip
        t0 = time.perf_counter()
        assert http_post(receiver.url, body, headers, 5.0).ok
        took.append((time.perf_counter() - t0) * 1000)
    return n / (time.perf_counter() - started), took


def drain(factory, batch: int, expected: int) -> float:  # noqa: ANN001
    worker = DeliveryWorker(factory, KEY, DeliveryPolicy(batch=batch))
    started = time.perf_counter()
    sent = 0
    while sent < expected:
        sent += worker.deliver_due(datetime.now(UTC) + timedelta(seconds=1))
    elapsed = time.perf_counter() - started
    worker.close()
    return sent / elapsed


def steady(factory, receiver: Receiver, rate: float, seconds: float, poll: float) -> list[float]:  # noqa: ANN001
    """Decisions at ``rate`` episodes/s for ``seconds`` while a worker polls every ``poll`` s:
    commit → arrival latencies (ms) of every message."""
    worker = DeliveryWorker(factory, KEY, DeliveryPolicy())
    stop = threading.Event()

    def poller() -> None:
        while not stop.is_set():
            worker.deliver_due(datetime.now(UTC) + timedelta(milliseconds=5))
            stop.wait(poll)

    committed: dict[str, float] = {}
    receiver.got.clear()
    thread = threading.Thread(target=poller, daemon=True)
    thread.start()
    n, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        for eid, at in escalate(factory, 1, start=100_000 + n):
            committed[eid] = at
        n += 1
        time.sleep(max(0.0, started + n / rate - time.monotonic()))
    deadline = time.monotonic() + 30
    while len(receiver.got) < n * PER_EPISODE and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join()
    worker.close()
    return [(r.at - committed[r.body["data"]["episode"]]) * 1000 for r in receiver.got]


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--messages", type=int, default=2200)
    ap.add_argument("--rate", type=float, default=5.0, help="episodes/s under steady load")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--poll", type=float, default=1.0)
    args = ap.parse_args()
    receiver = Receiver().up()
    with database(args.database) as url:
        factory = uow_factory(url, KEY)
        _, secret = webhooks.add(
            WebhookStore(factory),
            KEY,
            receiver.url,
            "escalation.opened",
            "bench",
            datetime.now(UTC),
        )
        receiver.secrets.append(secret)
        raw_rate, raw_ms = baseline(receiver, secret, args.messages)
        receiver.got.clear()
        episodes = max(1, args.messages // PER_EPISODE)
        results = {}
        for batch in (8, 1):
            escalate(factory, episodes, start=batch * 10_000)
            results[batch] = drain(factory, batch, episodes * PER_EPISODE)
        latencies = steady(factory, receiver, args.rate, args.seconds, args.poll)
        factory.dispose()
    receiver.down()
    n = episodes * PER_EPISODE
    print(f"webhooks on {args.database}: {n} messages per drain, receiver verifying signatures")
    print(f"  baseline raw signed POSTs, 1 thread:      {raw_rate:8.0f} /s   "
          f"round trip p50 {pct(raw_ms, 50):.2f} ms  p95 {pct(raw_ms, 95):.2f} ms")  # fmt: skip
    for batch, rate in results.items():
        print(f"  outbox drained by 1 worker, batch {batch}:   {rate:8.0f} /s   "
              f"({rate / raw_rate:.2f} x baseline)")  # fmt: skip
    print(f"  steady load {args.rate:g} decisions/s x {PER_EPISODE} notices, poll {args.poll:g} s: "
          f"{len(latencies)} delivered, commit -> received p50 {pct(latencies, 50):.0f} ms  "
          f"p95 {pct(latencies, 95):.0f} ms  max {max(latencies):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
