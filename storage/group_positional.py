"""A group's statements with positional parameters: sqlite3 binds ``?n`` from a tuple about
twice as fast as ``:name`` from a dict (measured: 1.9 against 3.7 µs per 17-column row; it
looks each name up in the dict as a new string), and a group binds ~40 per decision.

The SQL stays in ``storage/sql/queries.sql`` in ``:name`` style: ``positional(sql)`` rewrites
it once to numbered ``?1, ?2 …`` parameters (a name used twice is one number) and gives the
getter that takes those values from a row's dict, in that order, as one tuple (C speed:
``operator.itemgetter``). Rows are the same dicts every other path writes, so what is stored
does not change.

A parameter that is None in every row of the group (an audit entry's idempotency columns when
no caller sent a key, an open episode's closed reason) is written as the literal ``NULL``
instead: sqlite3 binds None through its adapter lookup, which fails by raising and catching an
AttributeError (measured under callgrind: ~6,400 instructions per None, 4 per decision of
bench_storage's group, 6 % of its whole decision). A literal NULL means what a bound one does,
in a value as in a comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

from storage.sql import NAMED_PARAMETER

Row = dict[str, Any]
NONE: frozenset[str] = frozenset()


@lru_cache(maxsize=256)
def positional(
    sql: str, nulls: frozenset[str] = NONE
) -> tuple[str, Callable[[Row], tuple[Any, ...]]]:
    """``sql`` with ``?n`` parameters (the names in ``nulls`` as ``NULL``), and the getter of a
    row's values in their order."""
    names: list[str] = []

    def number(match: Any) -> str:
        name = match.group(1)
        if name in nulls:
            return "NULL"
        if name not in names:
            names.append(name)
        return f"?{names.index(name) + 1}"

    text = NAMED_PARAMETER.sub(number, sql)
    if not names:
        return text, lambda row: ()
    if len(names) == 1:  # itemgetter of one name gives the value, not a tuple
        only = names[0]
        return text, lambda row: (row[only],)
    return text, itemgetter(*names)


@lru_cache(maxsize=256)
def parameter_names(sql: str) -> tuple[str, ...]:
    """The ``:name`` parameters of ``sql``, each once, in order of appearance."""
    return tuple(dict.fromkeys(m.group(1) for m in NAMED_PARAMETER.finditer(sql)))


def execute_many(db: Any, sql: str, rows: Sequence[Row]) -> None:
    """``db.executemany(sql, rows)`` with positional parameters (same statement, same rows)."""
    text, values = positional(sql, null_everywhere(sql, rows))
    db.executemany(text, map(values, rows))


def null_everywhere(sql: str, rows: Sequence[Row]) -> frozenset[str]:
    """The parameters of ``sql`` that are None in every one of ``rows`` (none if no rows)."""
    if not rows:
        return NONE
    first = rows[0]
    found = [
        name
        for name in parameter_names(sql)
        if first[name] is None and all(row[name] is None for row in rows)
    ]
    return frozenset(found) if found else NONE
