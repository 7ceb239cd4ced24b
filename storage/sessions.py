"""Page sessions kept in the database, so that signing out (or revoking the token) ends them.

The cookie holds a random session id (``secrets.token_urlsafe(32)``); the ``sessions`` row holds
only its keyed hash (``session_hash``), the token it was opened with, and when it was opened and
last seen. The hash is keyed because whoever can write the table (the application's database
role, or someone with the SQLite file) could otherwise add a row that a session id of their own
choosing opens, for any token, and act in the pages as that token's owner in history that
verifies; the key derives from the audit key, which the database does not hold. A session
is refused, and deleted, once it has been idle longer than ``idle`` or open longer than
``lifetime``, or when its token is revoked (``TokenStore.revoke`` deletes its sessions; the
revocation time is checked as well). ``last_seen_at`` is written at most once a minute, as a
token's ``last_used_at`` is, so that reading pages does not queue behind SQLite's one writer:
idle expiry is thus exact to within that minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from pathway.audit import AuditKey
from storage.access import TOUCH_EVERY, Token, borrowed_cursor, dialect_sql, token_from_row
from storage.columns import read_time
from storage.sql import QUERIES
from storage.unit_of_work import ReadyConnections

_NAMES = ("insert", "find", "touch", "delete", "delete_of_token", "purge")
MAX_ID_LENGTH = 200  # a cookie longer than this is no session id of ours


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: its token, and when it was opened (the CSRF token derives from its id)."""

    id: str
    token: Token
    created_at: datetime


KEY_PURPOSE = b"carepath page sessions"  # the session key: AuditKey.derive(KEY_PURPOSE)


def session_hash(key: bytes, session_id: str) -> str:
    """What a session's row holds of its id: HMAC-SHA256 under the session key. (Sessions
    stored before it was keyed, as a plain sha256, open nothing: their users sign in again.)"""
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


class SessionStore:
    """Open, find, end and purge page sessions on one database, under ``key`` (the audit key:
    the session key derives from it)."""

    def __init__(
        self,
        connections: ReadyConnections,
        *,
        key: AuditKey,
        idle: timedelta,
        lifetime: timedelta,
    ) -> None:
        self.connections = connections
        self.idle = idle
        self.lifetime = lifetime
        self._key = key.derive(KEY_PURPOSE)
        self._time = connections.backend.time
        self._sql = {n: dialect_sql(connections, QUERIES[f"session_{n}"]) for n in _NAMES}

    def open(self, token: Token, now: datetime) -> str:
        """A new session of ``token``; returns its id (for the cookie, kept nowhere else).
        Expired sessions of anyone are purged on the way."""
        session_id = secrets.token_urlsafe(32)
        params = {
            "id_hash": session_hash(self._key, session_id),
            "token_id": token.id,
            "now": self._time(now),
        }
        with borrowed_cursor(self.connections) as db:
            db.execute(self._sql["purge"], self._expiry(now))
            db.execute(self._sql["insert"], params)
        return session_id

    def find(self, session_id: str, now: datetime) -> Session | None:
        """The live session with this id, or None (unknown, expired, or its token revoked);
        an expired or revoked one is deleted."""
        if not session_id or len(session_id) > MAX_ID_LENGTH or not session_id.isascii():
            return None
        key = {"id_hash": session_hash(self._key, session_id)}
        with borrowed_cursor(self.connections) as db:
            row = db.execute(self._sql["find"], key).fetchone()
            if row is None:
                return None
            created_at, last_seen_at = read_time(row[0]), read_time(row[1])
            token = token_from_row(row[2:])
            if (
                token.revoked_at is not None
                or now - last_seen_at > self.idle
                or now - created_at > self.lifetime
            ):
                db.execute(self._sql["delete"], key)
                return None
            if now - last_seen_at >= TOUCH_EVERY:
                db.execute(self._sql["touch"], {**key, "now": self._time(now)})
        return Session(session_id, token, created_at)

    def close(self, session_id: str) -> None:
        """Sign-out: the session is deleted; its cookie opens nothing any more."""
        with borrowed_cursor(self.connections) as db:
            db.execute(self._sql["delete"], {"id_hash": session_hash(self._key, session_id)})

    def end_for_token(self, token_id: str) -> None:
        with borrowed_cursor(self.connections) as db:
            db.execute(self._sql["delete_of_token"], {"token_id": token_id})

    def purge(self, now: datetime) -> None:
        with borrowed_cursor(self.connections) as db:
            db.execute(self._sql["purge"], self._expiry(now))

    def _expiry(self, now: datetime) -> dict[str, object]:
        return {
            "idle_before": self._time(now - self.idle),
            "created_before": self._time(now - self.lifetime),
        }
