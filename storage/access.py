"""API access: bearer tokens with a role, stored as a sha256 and checked on every request.

A token is ``cpt_`` + 32 random bytes (``secrets.token_urlsafe``): the prefix makes a leaked
token recognisable to secret scanners and to people. Only its sha256 is stored; the token is
shown once, when it is created. Each token has a unique name, which becomes the actor of every
decision made with it (``token:<name>``), so the audit log names who acted.

``last_used_at`` is written at most once a minute per token: a write on every request would
queue every read behind SQLite's single writer.

Statements run on the driver cursors of the unit-of-work factory's ``ReadyConnections`` (as the
unit of work does, see ``storage/unit_of_work.py``), in autocommit: each is its own transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from storage.columns import read_time
from storage.sql import QUERIES, for_driver
from storage.unit_of_work import ReadyConnections

ROLES = ("coordinator", "auditor", "admin", "scheduler")
PREFIX = "cpt_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOUCH_EVERY = timedelta(minutes=1)

INSERT = QUERIES["token_insert"]
BY_HASH = QUERIES["token_by_hash"]
BY_ID = QUERIES["token_by_id"]
BY_NAME = QUERIES["token_by_name"]
ALL = QUERIES["token_all"]
REVOKE = QUERIES["token_revoke"]
TOUCH = QUERIES["token_touch"]


class TokenNameTaken(ValueError):
    """Token names are unique for ever: an audit actor must name one token."""

    def __init__(self, name: str) -> None:
        super().__init__(f"name: got {name!r}, expected a name no other token has had")
        self.name = name


class TokenNotFound(LookupError):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"token {token_id!r}: not found, expected the id of a token")
        self.token_id = token_id


@dataclass(frozen=True, slots=True)
class Token:
    """A token as listed and as authenticated: everything but the secret."""

    id: str
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def actor(self) -> str:
        """Who the audit log says acted when this token was used."""
        return f"token:{self.name}"


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ValueError(
            f"name: got {name!r}, expected 1–64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role: got {role!r}, expected one of {', '.join(ROLES)}")
    return role


@contextmanager
def borrowed_cursor(connections: ReadyConnections) -> Iterator[Any]:
    """A driver cursor (sqlite3 or psycopg, autocommit) for a few statements, then given back."""
    held = connections.take()
    try:
        yield held[1]
    finally:
        connections.give(held)


def dialect_sql(connections: ReadyConnections, sql: str) -> str:
    """``:name`` parameters (sqlite3) as the connection's driver wants them."""
    return for_driver(sql, connections.engine.dialect.name)


class TokenStore:
    """Create, list, revoke and authenticate tokens on one database."""

    def __init__(self, connections: ReadyConnections) -> None:
        self.connections = connections
        self._time = connections.backend.time
        self._sql = {name: dialect_sql(connections, sql) for name, sql in _STATEMENTS.items()}

    def create(self, name: str, role: str, now: datetime) -> tuple[Token, str]:
        """A new token; returns it with its secret, which is not kept anywhere."""
        check_name(name)
        check_role(role)
        secret = PREFIX + secrets.token_urlsafe(32)
        token = Token(uuid.uuid4().hex[:16], name, role, now, None, None)
        params = {
            "id": token.id,
            "name": name,
            "role": role,
            "token_hash": token_hash(secret),
            "created_at": self._time(now),
        }
        with borrowed_cursor(self.connections) as db:
            if db.execute(self._sql["by_name"], {"name": name}).fetchone() is not None:
                raise TokenNameTaken(name)
            try:
                db.execute(self._sql["insert"], params)
            except Exception as exc:  # a concurrent create of the same name
                if db.execute(self._sql["by_name"], {"name": name}).fetchone() is not None:
                    raise TokenNameTaken(name) from exc
                raise
        return token, secret

    def list(self) -> list[Token]:
        with borrowed_cursor(self.connections) as db:
            return [_token(row) for row in db.execute(self._sql["all"], {}).fetchall()]

    def get(self, token_id: str) -> Token:
        with borrowed_cursor(self.connections) as db:
            row = db.execute(self._sql["by_id"], {"id": token_id}).fetchone()
        if row is None:
            raise TokenNotFound(token_id)
        return _token(row)

    def revoke(self, token_id: str, now: datetime) -> Token:
        """Revoke the token (a token already revoked keeps its first revocation time); its page
        sessions (``storage.sessions``) end with it."""
        with borrowed_cursor(self.connections) as db:
            db.execute(self._sql["revoke"], {"id": token_id, "now": self._time(now)})
            db.execute(self._sql["end_sessions"], {"token_id": token_id})
        return self.get(token_id)

    def authenticate(self, secret: str, now: datetime) -> Token | None:
        """The live token with this secret, or None (unknown or revoked)."""
        if not secret.startswith(PREFIX):
            return None
        with borrowed_cursor(self.connections) as db:
            row = db.execute(self._sql["by_hash"], {"token_hash": token_hash(secret)}).fetchone()
            if row is None:
                return None
            token = _token(row)
            if token.revoked_at is not None:
                return None
            if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
                db.execute(self._sql["touch"], {"id": token.id, "now": self._time(now)})
        return token


_STATEMENTS = {
    "insert": INSERT,
    "by_hash": BY_HASH,
    "by_id": BY_ID,
    "by_name": BY_NAME,
    "all": ALL,
    "revoke": REVOKE,
    "touch": TOUCH,
    "end_sessions": QUERIES["session_delete_of_token"],  # migration 0006
}


def token_from_row(row: Sequence[Any]) -> Token:
    """A token from the columns id, name, role, created_at, revoked_at, last_used_at."""
    return _token(row)


def _token(row: Sequence[Any]) -> Token:
    id_, name, role, created_at, revoked_at, last_used_at = row
    return Token(
        id=id_,
        name=name,
        role=role,
        created_at=read_time(created_at),
        revoked_at=None if revoked_at is None else read_time(revoked_at),
        last_used_at=None if last_used_at is None else read_time(last_used_at),
    )
