"""Every hand-written SQL statement, by name, in ``queries.sql``; one parameter style.

Why SQL text and not SQLAlchemy Core: a use case runs ~8 statements and Core adds ~35 µs per
execute over the bare driver (measured), more than the engine's whole decision; so storage runs
prepared SQL on a ready driver cursor. The statements are in one file, each under a
``-- name --`` header (procrastinate's ``sql/queries.sql`` is the model), with ``:name``
parameters, sqlite3's named style; ``for_driver`` rewrites them to psycopg's ``%(name)s``, once
per statement. A name ending ``@postgresql`` or ``@sqlite`` is that dialect's version.
Statements built per call (the worklist's filters, the dialect's JSON functions) are assembled
from named fragments by the module that runs them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files

_HEADER = re.compile(r"^-- ([\w@]+) --$", re.MULTILINE)
# A ``:name`` parameter (not ``::`` casts, not ``a:b`` inside a word); group 1 is the name.
NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def parse(text: str) -> dict[str, str]:
    """The statements of a queries file, by name (the ``--`` lines after a header are its doc)."""
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = body.strip("\n").splitlines()
        while lines and lines[0].startswith("--"):
            lines.pop(0)
        if name in queries:
            raise ValueError(f"queries.sql: {name!r} is defined twice")
        queries[name] = "\n".join(lines).rstrip()
    return queries


QUERIES = parse(files(__package__).joinpath("queries.sql").read_text(encoding="utf-8"))


def query(name: str, dialect: str | None = None) -> str:
    """The statement named, in ``:name`` style: the dialect's own version if it has one."""
    if dialect is not None and f"{name}@{dialect}" in QUERIES:
        return QUERIES[f"{name}@{dialect}"]
    return QUERIES[name]


def pyformat(sql: str) -> str:
    """``:name`` parameters (sqlite3's style) rewritten to psycopg's ``%(name)s``."""
    return NAMED_PARAMETER.sub(r"%(\1)s", sql)


@lru_cache(maxsize=512)  # worklist statements vary by filter: a few hundred shapes at most
def for_driver(sql: str, dialect: str) -> str:
    """``sql`` in the parameter style of ``dialect``'s driver."""
    return pyformat(sql) if dialect == "postgresql" else sql
