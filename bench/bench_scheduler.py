"""Scheduler speed on PostgreSQL: timers fired/s with 1, 2 and 4 worker processes, next to the
raw ``SKIP LOCKED`` claim → mark → audit loop (batch 100) measured in the same run; and the lag
from due time to fired under a steady load.

Our side runs the real thing: ``carepath scheduler run --once`` processes (claims with a lease,
the engine deciding each timer, an audit entry with evidence, the episode row under its version,
a savepoint per timer) on a cohort whose 100,000 timers are all due. The raw loop does the least
any timer queue must: claim 100 due rows, mark them fired, insert an audit row each, commit.

The raw loop runs just before and just after ours on the same database and its mean is the
baseline (both are printed, with the load average), so that the drift of a shared machine
between the two measurements halves instead of landing on the ratio.

Run:  .venv/bin/python bench/bench_scheduler.py [--timers 100000] [--workers 1,2,4] [--lanes 1]
Targets: ≥ 30 % of the raw loop; 100,000 timers drained in under 60 s with 2 workers; no
timer fired twice. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pathway.usecases import DefinitionRegistry  # noqa: E402
from storage.postgres_cluster import postgres_server  # noqa: E402
from storage.unit_of_work import uow_factory  # noqa: E402
from tests.support.timer_cohort import (  # noqa: E402
    EXTRA,
    busy_definition,
    open_idle_episodes,
    write_busy_definition,
)

DEFS = DefinitionRegistry(busy_definition())
PER_EPISODE = EXTRA + 1
TEMPLATE = "bench_sched_template"
TARGET = 0.30  # of the raw loop's rate, with every worker count


def conninfo(url: str, db: str | None = None) -> str:
    u = make_url(url).set(drivername="postgresql")
    if db:
        u = u.set(database=db)
    return u.render_as_string(hide_password=False)


def sa_url(url: str, db: str) -> str:
    return make_url(url).set(database=db).render_as_string(hide_password=False)


def admin(url: str, *sql: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        for s in sql:
            conn.execute(s)


# -- the raw loop ----------------------------------------------------------------------------

RAW_SETUP = """
DROP TABLE IF EXISTS raw_audit; DROP TABLE IF EXISTS raw_timers;
CREATE TABLE raw_timers (id bigserial PRIMARY KEY, episode_id int NOT NULL, due_at timestamptz NOT NULL,
                         status text NOT NULL DEFAULT 'pending');
CREATE INDEX ON raw_timers (status, due_at);
CREATE TABLE raw_audit (id bigserial PRIMARY KEY, timer_id bigint NOT NULL, episode_id int NOT NULL,
                        fired_at timestamptz NOT NULL, payload text NOT NULL);
"""
RAW_CLAIM = """SELECT id, episode_id FROM raw_timers WHERE status = 'pending' AND due_at <= now()
ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED"""


def raw_worker(info: str) -> None:
    with psycopg.connect(info) as conn:
        while True:
            with conn.transaction():
                rows = conn.execute(RAW_CLAIM).fetchall()
                if not rows:
                    return
                conn.execute(
                    "UPDATE raw_timers SET status = 'fired' WHERE id = ANY(%s)",
                    ([r[0] for r in rows],),
                )
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO raw_audit (timer_id, episode_id, fired_at, payload) VALUES (%s, %s, now(), %s)",
                        [(r[0], r[1], "x" * 600) for r in rows],
                    )


def raw_rate(url: str, db: str, timers: int, workers: int) -> float:
    info = conninfo(url, db)
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute(RAW_SETUP)
        conn.execute(
            "INSERT INTO raw_timers (episode_id, due_at) SELECT g / 11, now() - interval '1 day' + g * interval '1 ms' "
            "FROM generate_series(1, %s) g",
            (timers,),
        )
        conn.execute("VACUUM ANALYZE raw_timers")
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from bench_scheduler import raw_worker; raw_worker({info!r})"
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(workers)]
    for p in procs:
        p.wait()
    elapsed = time.perf_counter() - start
    with psycopg.connect(info) as conn:
        done = conn.execute("SELECT count(*), count(DISTINCT timer_id) FROM raw_audit").fetchone()
    assert done[0] == done[1] == timers, done
    return timers / elapsed


# -- ours ------------------------------------------------------------------------------------


def build_template(url: str, episodes: int) -> None:
    admin(url, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    factory = uow_factory(sa_url(url, TEMPLATE))
    open_idle_episodes(factory, DEFS, episodes)
    factory.dispose()


def our_rate(
    url: str, db: str, definition: Path, workers: int, expected: int, lanes: int = 1
) -> tuple[float, int, int]:
    env = {
        **os.environ,
        "CAREPATH_DATABASE_URL": sa_url(url, db),
        "CAREPATH_DEFINITION": str(definition),
    }
    cmd = [sys.executable, "-m", "carepath.cli", "scheduler", "run", "--once", "--batch", "100"]
    cmd += ["--lanes", str(lanes)]
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL) for _ in range(workers)]
    for p in procs:
        p.wait()
    elapsed = time.perf_counter() - start
    with psycopg.connect(conninfo(url, db)) as conn:
        fired, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM audit_log WHERE kind = 'timer'"
        ).fetchone()
    return fired / elapsed, fired, fired - distinct


def steady_lag(url: str, definition: Path, episodes: int, window: float) -> list[float]:
    """Episodes whose first timers come due spread over ``window`` seconds from now; 2 workers
    sweep every 0.25 s; the lag is each firing's lateness (recorded - due)."""
    db = "bench_sched_lag"
    admin(url, f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}")
    factory = uow_factory(sa_url(url, db))
    from pathway import usecases

    uow = factory()
    now = datetime.now(UTC)
    for i in range(episodes):
        at = now - timedelta(days=1) + timedelta(seconds=5 + window * i / episodes)
        usecases.open_episode(uow, DEFS, {"age": 70}, at=at, now=now, actor="bench")
    env = {
        **os.environ,
        "CAREPATH_DATABASE_URL": sa_url(url, db),
        "CAREPATH_DEFINITION": str(definition),
    }
    cmd = [sys.executable, "-m", "carepath.cli", "scheduler", "run", "--interval", "0.25"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    time.sleep(window + 8)
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()
    factory.dispose()
    with psycopg.connect(conninfo(url, db)) as conn:
        rows = conn.execute(
            "SELECT (payload::json->>'lateness_seconds')::float FROM audit_log WHERE kind = 'timer'"
        ).fetchall()
    return [r[0] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument(
        "--lanes",
        type=int,
        default=1,
        help="claim → fire loops per worker process (`scheduler run --lanes`, default there 2); "
        "1, the default here, is the like-for-like comparison: one connection per worker, as the "
        "raw loop has one per process",
    )
    args = parser.parse_args()
    episodes = -(-args.timers // PER_EPISODE)
    expected = episodes * PER_EPISODE
    with postgres_server() as url, tempfile.TemporaryDirectory() as tmp:
        definition = write_busy_definition(Path(tmp) / "busy.json")
        t = time.perf_counter()
        build_template(url, episodes)
        print(
            f"cohort: {episodes} episodes, {expected} due timers (built in {time.perf_counter() - t:.1f} s)"
        )
        print(f"each worker process runs {args.lanes} lane(s) (scheduler run --lanes)")
        print(
            f"{'workers':>7} {'raw loop/s':>11} {'carepath/s':>11} {'ratio':>6} {'target':>7}"
            f" {'drain s':>8} {'dupes':>6}  result"
        )
        for n in (int(w) for w in args.workers.split(",")):
            db = f"bench_sched_{n}"
            admin(url, f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db} TEMPLATE {TEMPLATE}")
            before = raw_rate(url, db, expected, n)
            ours, fired, dupes = our_rate(url, db, definition, n, expected, args.lanes)
            after = raw_rate(url, db, expected, n)
            raw = (before + after) / 2  # the baseline around ours: the machine's drift halves
            print(
                f"{n:>7} {raw:>11,.0f} {ours:>11,.0f} {ours / raw:>6.0%} {TARGET:>7.0%}"
                f" {fired / ours:>8.1f} {dupes:>6}  "
                + ("PASS" if ours / raw >= TARGET and dupes == 0 and fired == expected else "FAIL")
                + ("" if fired == expected else f"  (fired {fired} of {expected}!)")
                + f"  (raw {before:,.0f} before, {after:,.0f} after; load {os.getloadavg()[0]:.1f})"
            )
        lags = steady_lag(url, definition, 2000, 20.0)
        if lags:
            q = statistics.quantiles(lags, n=20)
            print(
                f"steady load (2 workers, sweep every 0.25 s, {len(lags)} timers due over 20 s): "
                f"lag p50 {statistics.median(lags):.2f} s, p95 {q[18]:.2f} s, max {max(lags):.2f} s"
            )
        print(
            "targets: ≥ 30 % of the raw loop; 100,000 timers drained < 60 s with 2 workers; 0 duplicates"
        )


if __name__ == "__main__":
    main()
