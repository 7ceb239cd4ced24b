"""Worklist latency with a million episodes: through HTTP, next to the bare query, same run.

A synthetic cohort is bulk-inserted straight into the schema (executemany on SQLite, COPY on
PostgreSQL): 70 % terminal episodes (no pending timer), 30 % live ones due over the next 90
days, 3 % of the live ones overdue, 1 % waiting with nothing pending, an open escalation on 5 %
of them, and closed tasks and orders on the rest (tasks are where "escalated" looks). The API
then runs in a uvicorn subprocess on 127.0.0.1 and each worklist query is requested
``--requests`` times over one keep-alive connection (httpx); the same query objects are run
bare through ``storage.worklist.Worklist`` in this process. Target: p95 under 50 ms over HTTP.

Run:  .venv/bin/python bench/bench_worklist.py [--episodes 1000000] [--requests 200]
      [--only sqlite|postgresql]
PostgreSQL: CAREPATH_TEST_POSTGRES_URL, else a throwaway cluster started here. Takes a few
minutes (most of it inserting rows). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.access import TokenStore, borrowed_cursor  # noqa: E402
from storage.columns import postgres_time, sqlite_time  # noqa: E402
from storage.postgres_cluster import postgres_server  # noqa: E402
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory  # noqa: E402
from storage.worklist import Worklist, WorklistQuery  # noqa: E402

NOW = datetime(2026, 6, 1, 9, tzinfo=UTC)
VERSION = "l1-l2-compression-fracture@c618e6a492e3"
LIVE = {"intake": 0.03, "workup": 0.05, "conservative_care": 0.17, "reassessment": 0.05}
ENDED = {"discharged": 0.35, "closed": 0.15, "immediate_transfer": 0.05,
         "delayed_referral": 0.05, "augmentation_consideration": 0.10}  # fmt: skip
EPISODE_COLUMNS = (
    "id", "definition_version", "state", "opened_at", "state_entered_at", "audit_hash",
    "version", "facts", "patient_ref", "label", "next_due_at", "closed_reason",
)  # fmt: skip
TASK_COLUMNS = (
    "episode_id", "key", "rule_id", "kind", "text", "created_at", "status", "position",
)  # fmt: skip
TARGET_MS = 50.0


def cohort(n: int, seed: int = 7) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(episode row, its task rows) with raw datetimes; the caller converts times."""
    rng = random.Random(seed)
    states, weights = zip(*(LIVE | ENDED).items(), strict=True)
    for i in range(n):
        state = rng.choices(states, weights)[0]
        opened = NOW - timedelta(days=rng.uniform(0, 400))
        episode_id = f"{rng.getrandbits(128):032x}"
        due, tasks = None, [("WU-MRI@2", "WU-MRI", "order", "done")]
        if state in LIVE:
            roll = rng.random()  # 3 % overdue, 1 % nothing pending, the rest due later
            if roll < 0.03:
                due = NOW - timedelta(hours=rng.uniform(1, 72))
            elif roll >= 0.04:
                due = NOW + timedelta(days=rng.uniform(0, 90))
            tasks.append(("CC-ANALGESIA@3", "CC-ANALGESIA", "order", "open"))
            if rng.random() < 0.05:
                tasks.append(("FU-REASSESS-OVERDUE@5", "FU-REASSESS-OVERDUE", "escalation", "open"))
        row = (
            episode_id, VERSION, state, opened, opened, "0" * 64, 3, "{}",
            f"MRN-{i:07d}", f"L1 fracture, ward {i % 40}", due,
            "declined" if state == "closed" else None,
        )  # fmt: skip
        yield row, [(episode_id, k, r, kind, "do it", opened, st, p) for p, (k, r, kind, st)
                    in enumerate(tasks)]  # fmt: skip


def fill_sqlite(factory: SqlUnitOfWorkFactory, n: int) -> None:
    def times(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(sqlite_time(v) if isinstance(v, datetime) else v for v in row)

    episodes = ",".join(EPISODE_COLUMNS)
    tasks = ",".join(TASK_COLUMNS)
    with borrowed_cursor(factory.connections) as db:
        db.execute("BEGIN")
        batch_e: list[tuple[Any, ...]] = []
        batch_t: list[tuple[Any, ...]] = []
        for row, task_rows in cohort(n):
            batch_e.append(times(row))
            batch_t += [times(t) for t in task_rows]
            if len(batch_e) >= 50_000:
                _sqlite_flush(db, episodes, tasks, batch_e, batch_t)
        _sqlite_flush(db, episodes, tasks, batch_e, batch_t)
        db.execute("COMMIT")
        db.execute("ANALYZE")


def _sqlite_flush(
    db: Any, episodes: str, tasks: str, rows: list[Any], task_rows: list[Any]
) -> None:
    marks = ",".join("?" * len(EPISODE_COLUMNS))
    db.executemany(f"INSERT INTO episodes ({episodes}) VALUES ({marks})", rows)
    marks = ",".join("?" * len(TASK_COLUMNS))
    db.executemany(f"INSERT INTO tasks ({tasks}) VALUES ({marks})", task_rows)
    rows.clear()
    task_rows.clear()


def fill_postgres(factory: SqlUnitOfWorkFactory, n: int) -> None:
    with borrowed_cursor(factory.connections) as db, db.connection.transaction():
        task_rows: list[tuple[Any, ...]] = []
        with db.copy(f"COPY episodes ({','.join(EPISODE_COLUMNS)}) FROM STDIN") as copy:
            for row, tasks in cohort(n):
                copy.write_row(tuple(postgres_time(v) if isinstance(v, datetime) else v
                                     for v in row))  # fmt: skip
                task_rows += tasks
        with db.copy(f"COPY tasks ({','.join(TASK_COLUMNS)}) FROM STDIN") as copy:
            for row in task_rows:
                copy.write_row(row)
    with borrowed_cursor(factory.connections) as db:
        db.execute("VACUUM ANALYZE episodes")
        db.execute("VACUUM ANALYZE tasks")


def queries(worklist: Worklist) -> dict[str, WorklistQuery]:
    live = tuple(LIVE)
    base = WorklistQuery(states=live, now=NOW)
    deep = base
    for _ in range(20):  # the cursor of page 21
        page = worklist.page(deep)
        deep = WorklistQuery(states=live, now=NOW, after=page.next_cursor)
    return {
        "default (page 1)": base,
        "page 21 (cursor)": deep,
        "overdue": WorklistQuery(states=live, now=NOW, overdue=True),
        "escalated": WorklistQuery(states=live, now=NOW, escalated=True),
        "state=reassessment": WorklistQuery(states=("reassessment",), now=NOW),
        "due within 7 days": WorklistQuery(states=live, now=NOW, due_before=NOW + timedelta(7)),
        "search MRN-00012": WorklistQuery(states=live, now=NOW, search="MRN-00012"),
        "state=closed": WorklistQuery(states=("closed",), now=NOW),
    }


def params(q: WorklistQuery) -> dict[str, Any]:
    out: dict[str, Any] = {"state": list(q.states), "limit": q.limit}
    if q.overdue:
        out["overdue"] = "true"
    if q.escalated:
        out["escalated"] = "true"
    if q.due_before:
        out["due_before"] = q.due_before.isoformat()
    if q.search:
        out["q"] = q.search
    if q.after:
        out["cursor"] = q.after.encode()
    return out


def percentiles(run: Callable[[], Any], n: int) -> tuple[float, float]:
    run()  # warm
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


@contextmanager
def server(url: str, port: int) -> Iterator[str]:
    env = {**os.environ, "CAREPATH_DATABASE_URL": url}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def measure(name: str, url: str, n: int, requests: int, port: int) -> list[str]:
    factory = uow_factory(url)
    start = time.perf_counter()
    (fill_sqlite if name == "SQLite" else fill_postgres)(factory, n)
    print(f"{name}: {n:,} episodes inserted in {time.perf_counter() - start:.0f} s", flush=True)
    secret = TokenStore(factory.connections).create("bench", "coordinator", NOW)[1]
    worklist = Worklist(factory.connections)
    rows = []
    with (
        server(url, port) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as client,
    ):
        for label, q in queries(worklist).items():
            sql = percentiles(lambda q=q: worklist.page(q), requests)
            p = params(q)
            http = percentiles(lambda p=p: client.get("/api/episodes", params=p).raise_for_status(),
                               requests)  # fmt: skip
            verdict = "ok" if http[1] < TARGET_MS else "SLOW"
            rows.append(f"{name:<10} {label:<20} {sql[0]:>8.2f} {sql[1]:>8.2f} "
                        f"{http[0]:>9.2f} {http[1]:>9.2f}  {verdict}")  # fmt: skip
    factory.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvicorn

        from carepath.api import create_api

        uvicorn.run(create_api(), host="127.0.0.1", port=args.serve, log_level="warning")
        return
    rows = []
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'worklist.db'}"
            rows += measure("SQLite", url, args.episodes, args.requests, 18731)
    if args.only != "sqlite":
        with postgres_server() as url:
            rows += measure("PostgreSQL", url, args.episodes, args.requests, 18732)
    print(f"\nworklist latency, ms ({args.episodes:,} episodes, {args.requests} requests each, "
          f"limit 50; target p95 < {TARGET_MS:.0f} ms over HTTP)")  # fmt: skip
    print(f"{'database':<10} {'query':<20} {'SQL p50':>8} {'SQL p95':>8} {'HTTP p50':>9} "
          f"{'HTTP p95':>9}")  # fmt: skip
    print("\n".join(rows))


if __name__ == "__main__":
    main()
