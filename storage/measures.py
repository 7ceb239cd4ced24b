"""Reading every episode history of one pathway in one streaming pass, for the measures.

One statement (``measure_history`` in ``queries.sql``) returns the audit entries of the
pathway's episodes in (episode, seq) order with only what measures read: columns, recorded
facts, and the small parts of each canonical payload cut out in SQL (transitions, refusals,
whether each rule a measure names fired), never the rules' evidence, which is most of the
bytes. Rows are fetched in chunks (a server-side cursor on PostgreSQL; sqlite3 steps lazily)
and grouped into one ``History`` at a time, so memory stays flat in the number of episodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from pathway.measure_eval import Entry, History
from storage.access import borrowed_cursor
from storage.columns import read_time
from storage.sql import for_driver, query
from storage.unit_of_work import ReadyConnections

CHUNK = 5000
_parse_time = datetime.fromisoformat


IdRange = tuple[str | None, str | None]  # (after, last): ids > after and <= last; None: open
WHOLE: IdRange = (None, None)


def history_sql(
    dialect: str, rules: tuple[str, ...], ids: IdRange = WHOLE
) -> tuple[str, dict[str, str]]:
    """The statement for ``dialect`` with one fired-flag column per rule, and its parameters;
    only the episodes in ``ids`` (a parallel worker's share) if bounded."""
    flag = query("measure_rule_flag", dialect)
    flags = "".join(", " + flag.replace("{param}", f"rule_{i}") for i in range(len(rules)))
    params = {f"rule_{i}": r for i, r in enumerate(rules)}
    bounds = []
    for name, value in zip(("after", "last"), ids, strict=True):
        if value is not None:
            bounds.append(query(f"measure_range_{name}"))
            params[name] = value
    sql = query("measure_history", dialect).replace("{rule_flags}", flags)
    return for_driver(sql.replace("{range}", " ".join(bounds)), dialect), params


def episode_count(connections: ReadyConnections, pathway: str) -> int:
    """How many episodes ``pathway`` has (a progress bar's total)."""
    sql = for_driver(query("measure_episode_count"), connections.engine.dialect.name)
    with borrowed_cursor(connections) as cur:
        return int(cur.execute(sql, {"pathway": pathway}).fetchone()[0])


def split_ids(connections: ReadyConnections, pathway: str, total: int, parts: int) -> list[IdRange]:
    """``parts`` ranges of ``pathway``'s episode ids with about ``total / parts`` each."""
    sql = for_driver(query("measure_split"), connections.engine.dialect.name)
    cuts: list[str | None] = [None]
    with borrowed_cursor(connections) as cur:
        for i in range(1, parts):
            row = cur.execute(sql, {"pathway": pathway, "offset": i * total // parts}).fetchone()
            if row is not None and row[0] != cuts[-1]:
                cuts.append(row[0])
    cuts.append(None)
    return list(zip(cuts, cuts[1:], strict=False))


def stream_rows(
    connections: ReadyConnections, sql: str, params: dict[str, Any]
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql``, fetched CHUNK at a time."""
    with borrowed_cursor(connections) as cur:
        if connections.engine.dialect.name == "postgresql":
            conn = cur.connection
            with conn.transaction(), conn.cursor(name="carepath_measures") as named:
                named.itersize = CHUNK
                named.execute(sql, params)
                yield from named
            return
        cur.execute(sql, params)
        while rows := cur.fetchmany(CHUNK):
            yield from rows


def histories(
    connections: ReadyConnections,
    pathway: str,
    rules: tuple[str, ...],
    timers: frozenset[str] | None = None,
    ids: IdRange = WHOLE,
) -> Iterator[History]:
    """Every history of ``pathway``'s episodes, one at a time; ``rules`` are read as fired.
    With ``timers`` (those the measures read), a timer entry that fired none of them and
    changed nothing (no move, no state change, no rule named fired) is left out: a fifth of
    the rows, and it changes no verdict, outcome, stay or refusal."""
    dialect = connections.engine.dialect.name
    sql, params = history_sql(dialect, rules, ids)
    params["pathway"] = pathway
    current: History | None = None
    episode_id = None
    entries: list[Entry] = []
    loads, none, n = orjson.loads, frozenset[str](), len(rules)
    time_of = read_time if dialect == "postgresql" else _sqlite_time
    for row in stream_rows(connections, sql, params):  # moves, refused: bytes or str
        ep, patient_ref, closed_reason, seq, kind, at, s_from, s_to, moves, refused = row[:10]
        if ep != episode_id:
            if current is not None:
                yield current
            episode_id = ep
            current = History(ep, patient_ref, closed_reason)
            entries = current.entries
        timer, facts = row[10], row[11]
        flags = row[13:] if n else ()
        if (
            timers is not None
            and timer
            and not moves
            and s_from == s_to
            and entries
            and not any(flags)
            and timer.rsplit(":", 1)[-1].split("@", 1)[0] not in timers
        ):
            continue
        entries.append(
            Entry(
                seq,
                kind,
                time_of(at),
                s_from,
                s_to,
                [(t["source"], t["dest"], tuple(t["rules"])) for t in loads(moves[:-1])]
                if moves
                else [],
                frozenset(r for r, f in zip(rules, flags, strict=True) if f)
                if any(flags)
                else none,
                tuple(_refused(loads(refused))) if refused else (),
                timer.rsplit(":", 1)[-1].split("@", 1)[0] if timer else None,
                loads(facts) if facts is not None else None,
                time_of(row[12]) if facts is not None else None,
            )
        )
    if current is not None:
        yield current


def _sqlite_time(text: str) -> datetime:
    """SQLite's fixed-width naive UTC text (``columns.sqlite_time``) as aware UTC: the
    general ``read_time`` checks per call what this column always is."""
    return _parse_time(text + "+00:00")  # one call: a third cheaper than .replace(tzinfo=)


def _refused(items: Any) -> Iterator[str]:
    for item in items:
        firing = item.get("firing") if isinstance(item, dict) else None
        rule = (firing or {}).get("rule_id") or (
            item.get("rule_id") if isinstance(item, dict) else None
        )
        if rule:
            yield str(rule)


def raw_rows(connections: ReadyConnections, pathway: str) -> Iterator[tuple[Any, ...]]:
    """The bench's baseline: the same audit rows streamed whole (``measure_audit_rows``)."""
    sql = for_driver(query("measure_audit_rows"), connections.engine.dialect.name)
    yield from stream_rows(connections, sql, {"pathway": pathway})
