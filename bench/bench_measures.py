"""Measures on real volumes: every measure of one pathway from 10,000 and 100,000 episodes.

Real histories: ``--templates`` scenarios of each pathway from ``bench/cohort.py`` (the L1–L2
ones enrol fracture liaison episodes too) are replayed through the use cases in memory; their
rows (episode, audit entries, observations) are then bulk-copied into the schema as many times
as needed (executemany on SQLite, COPY on PostgreSQL), each copy with a new id and moved by a
whole number of days (0–364) so that the months spread. Copies keep their template's hashes
(the chain is not what this measures: measures never read it).

Per database, per size, per pathway: the wall and CPU time of ``carepath.measures.pathway_reports``
(all measures, outcomes, time in state, refusals), episodes/s, the peak Python memory of the
pass (tracemalloc, a second run: tracing slows it), against a baseline measured in the same run:
the same audit rows streamed whole by a bare SELECT (``measure_audit_rows``), nothing parsed.
Then the same pass split over ``--workers`` processes (``carepath measures``' default: one per
core), its wall time, its CPU (workers included), and whether it met the target; its report
must equal the one-process report (asserted).
Target: < 5 s for all measures of one pathway at 100,000 episodes; memory flat in the size.

Run:  .venv/bin/python bench/bench_measures.py [--sizes 10000,100000] [--only sqlite|postgresql]
      [--workers 2]
PostgreSQL: CAREPATH_TEST_POSTGRES_URL, else a throwaway cluster started here. Prints a table;
asserts only that the workers' report equals one process's.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cohort import fls_scenario, scenario  # noqa: E402

from carepath.bootstrap import Wiring, current_definitions, wire  # noqa: E402
from carepath.measures import pathway_reports  # noqa: E402
from carepath.replay.runner import replay  # noqa: E402
from carepath.replay.scenario import parse_scenario  # noqa: E402
from pathway.registry import DefinitionRegistry  # noqa: E402
from pathway.unit_of_work import InMemoryStore, InMemoryUnitOfWork  # noqa: E402
from storage.access import borrowed_cursor  # noqa: E402
from storage.columns import postgres_time, sqlite_time  # noqa: E402
from storage.measures import raw_rows  # noqa: E402
from storage.postgres_cluster import postgres_server  # noqa: E402
from storage.unit_of_work import uow_factory  # noqa: E402

AS_OF = datetime(2027, 12, 31, 23, 59, tzinfo=UTC)
WORKERS = 2  # the second pass: the pathway split over this many processes (--workers)
EPISODE = ("id", "definition_version", "pathway", "state", "opened_at", "state_entered_at",
           "care_started_at", "closed_reason", "patient_ref", "audit_hash", "version", "facts")  # fmt: skip
AUDIT = ("episode_id", "seq", "event_id", "kind", "actor", "at", "recorded_at", "state_from",
         "state_to", "definition_version", "payload", "prev_hash", "hash")  # fmt: skip
OBS = ("episode_id", "seq", "id", "facts", "at", "recorded_at", "actor", "source")
TIMES = {"opened_at", "state_entered_at", "care_started_at", "at", "recorded_at"}


def templates(n: int) -> list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Replay ``n`` scenarios of each pathway in memory; every episode's rows (as dicts)."""
    registry = DefinitionRegistry(current_definitions())
    store = InMemoryStore()
    rng = random.Random(7)
    raws = [scenario(i, rng) for i in range(n)] + [fls_scenario(i, rng) for i in range(n)]
    for i, raw in enumerate(raws):
        raw["patient"] = {**raw["patient"]}
        replay(
            parse_scenario(orjson.dumps(raw), f"t{i}"), registry, lambda: InMemoryUnitOfWork(store)
        )
    out = []
    uow = InMemoryUnitOfWork(store)
    for i, (eid, ep) in enumerate(sorted(store.episodes.items())):
        episode = {
            "id": eid, "definition_version": ep.definition_version, "pathway": ep.pathway,
            "state": ep.state, "opened_at": ep.opened_at, "state_entered_at": ep.state_entered_at,
            "care_started_at": ep.care_started_at, "closed_reason": ep.closed_reason,
            "patient_ref": ep.patient_ref or f"MRN-{i}", "audit_hash": ep.audit_hash,
            "version": ep.version, "facts": "{}",
        }  # fmt: skip
        audit, obs = [], []
        for r in uow.audit_records(eid):
            audit.append({
                "episode_id": eid, "seq": r.seq, "event_id": r.event_id, "kind": r.kind,
                "actor": r.actor, "at": r.at, "recorded_at": r.recorded_at,
                "state_from": r.state_from, "state_to": r.state_to,
                "definition_version": ep.definition_version, "payload": r.payload.decode(),
                "prev_hash": r.prev_hash, "hash": r.hash,
            })  # fmt: skip
            body = r.body()
            if "facts" in body:
                obs.append({
                    "episode_id": eid, "seq": r.seq, "id": r.event_id, "facts": body["facts"],
                    "at": r.at, "recorded_at": r.recorded_at, "actor": r.actor,
                    "source": body.get("source", "user"),
                })  # fmt: skip
        out.append((episode, audit, obs))
    return out


def copies(pool: list[Any], start: int, stop: int) -> Any:
    """Copies ``start``..``stop`` of the pool's episodes: new ids, moved by whole days."""
    rng = random.Random(start)
    for i in range(start, stop):
        episode, audit, obs = pool[i % len(pool)]
        shift = timedelta(days=rng.randrange(365))
        eid = f"b{i:07d}"

        def moved(row: dict[str, Any], eid: str = eid, shift: timedelta = shift) -> dict[str, Any]:
            row = dict(row)
            for k in TIMES & row.keys():
                if row[k] is not None:
                    row[k] = row[k] + shift
            if "episode_id" in row:
                row["episode_id"] = eid
            return row

        e = moved(episode) | {"id": eid, "patient_ref": f"MRN-{i}"}
        a = [moved(r) | {"event_id": f"{eid}/{r['seq']}"} for r in audit]
        o = []
        for r in obs:
            facts = dict(r["facts"])
            if "fracture_date" in facts:
                facts["fracture_date"] = (
                    date.fromisoformat(facts["fracture_date"]) + shift
                ).isoformat()
            o.append(moved(r) | {"id": f"{eid}/{r['seq']}", "facts": orjson.dumps(facts).decode()})
        yield e, a, o


def fill(wiring: Wiring, pool: list[Any], start: int, stop: int) -> None:
    connections = wiring.uow_factory.connections
    pg = connections.engine.dialect.name == "postgresql"
    conv = postgres_time if pg else sqlite_time

    def row(d: dict[str, Any], cols: tuple[str, ...]) -> tuple[Any, ...]:
        return tuple(conv(d[c]) if c in TIMES else d[c] for c in cols)

    batch: dict[str, list[tuple[Any, ...]]] = {"episodes": [], "audit_log": [], "observations": []}
    with borrowed_cursor(connections) as db:

        def flush() -> None:
            for table, cols in (("episodes", EPISODE), ("audit_log", AUDIT), ("observations", OBS)):
                rows = batch[table]
                if pg:
                    with db.copy(f"COPY {table} ({','.join(cols)}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r)
                else:
                    marks = ",".join("?" * len(cols))
                    db.execute("BEGIN")
                    db.executemany(f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks})", rows)
                    db.execute("COMMIT")
                rows.clear()

        for e, a, o in copies(pool, start, stop):
            batch["episodes"].append(row(e, EPISODE))
            batch["audit_log"] += [row(r, AUDIT) for r in a]
            batch["observations"] += [row(r, OBS) for r in o]
            if len(batch["episodes"]) >= 5000:
                flush()
        flush()
        if pg:
            db.execute("ANALYZE")


def count(wiring: Wiring, pathway: str) -> int:
    connections = wiring.uow_factory.connections
    sql = "SELECT count(*) FROM episodes WHERE pathway = :pathway"
    if connections.engine.dialect.name == "postgresql":
        sql = sql.replace(":pathway", "%(pathway)s")
    with borrowed_cursor(connections) as db:
        return int(db.execute(sql, {"pathway": pathway}).fetchone()[0])


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def cpu(fn: Any) -> tuple[float, float, Any]:
    """(wall s, CPU s of this process, result): on a shared machine CPU is the steadier one."""
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t, time.process_time() - c, out


def peak(fn: Any) -> float:
    tracemalloc.start()
    fn()
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top / 2**20


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(name: str, url: str, sizes: list[int], pool: list[Any], workers: int = 2) -> list[str]:
    factory = uow_factory(url)
    wiring = wire(current=current_definitions(), factory=factory)
    lines, done = [], 0
    for size in sizes:
        t_fill, _ = timed(lambda: fill(wiring, pool, done, size))  # noqa: B023
        done = size
        print(f"{name}: {size:,} episodes filled in {t_fill:.1f} s", file=sys.stderr)
        for pathway in ("l1-l2-compression-fracture", "fracture-liaison"):

            def run(n: int = 1) -> Any:
                return pathway_reports(wiring, pathway=pathway, month_from=None, month_to=None,  # noqa: B023
                                       as_of=AS_OF, workers=n)  # fmt: skip

            t_base, c_base, rows = cpu(
                lambda: sum(1 for _ in raw_rows(factory.connections, pathway))  # noqa: B023
            )
            t_all, c_all, one = cpu(run)
            before = children_cpu()
            t_par, c_par, split = cpu(lambda: run(workers))
            c_par += children_cpu() - before  # the workers' CPU too
            assert split == one, "the workers' report differs from one process's"
            episodes = count(wiring, pathway)
            mem = peak(run)
            lines.append(
                f"{name:<10} {size:>8,} {pathway:<27} {episodes:>8,} {rows:>9,} {t_base:>7.2f} "
                f"{t_all:>7.2f} {c_base:>7.2f} {c_all:>7.2f} {t_all / t_base:>6.1f} "
                f"{episodes / t_all:>10,.0f} {mem:>8.1f} {t_par:>7.2f} {c_par:>7.2f} "
                f"{t_par / t_base:>6.1f} {'yes' if t_par < 5 else 'NO':>6}"
            )
            print(lines[-1], file=sys.stderr)
    factory.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--templates", type=int, default=1000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, default=WORKERS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    t, pool = timed(lambda: templates(args.templates))
    gc.freeze()  # the template pool stays for the whole run: keep it out of every collection
    print(f"{len(pool):,} template episodes replayed in {t:.1f} s", file=sys.stderr)
    lines: list[str] = []
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            lines += measure("SQLite", f"sqlite:///{tmp}/measures.db", sizes, pool, args.workers)
    if args.only != "sqlite":
        with postgres_server() as url:
            lines += measure("PostgreSQL", url, sizes, pool, args.workers)
    print("\nall measures of one pathway, as of 2027-12-31 (baseline: the same audit rows "
          "streamed whole by a bare SELECT)")  # fmt: skip
    print(f"{'database':<10} {'total':>8} {'pathway':<27} {'episodes':>8} {'rows':>9} "
          f"{'base s':>7} {'all s':>7} {'base cpu':>7} {'all cpu':>7} {'x base':>6} "
          f"{'episodes/s':>10} {'peak MB':>8} {f'{WORKERS}w s':>7} {f'{WORKERS}w cpu':>7} "
          f"{'x base':>6} {'< 5 s':>6}")  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
