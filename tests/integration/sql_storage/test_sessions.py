"""Page sessions in the database (``storage.sessions``) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pathway.audit import AuditKey
from storage.access import TokenStore
from storage.sessions import KEY_PURPOSE, SessionStore, session_hash
from storage.unit_of_work import SqlUnitOfWorkFactory, uow_factory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def factory(database_url: str) -> Iterator[SqlUnitOfWorkFactory]:
    made = uow_factory(database_url)
    yield made
    made.dispose()


def _sessions(factory: SqlUnitOfWorkFactory, key: AuditKey | None = None) -> SessionStore:
    return SessionStore(
        factory.connections,
        key=key or factory.audit_key,
        idle=timedelta(minutes=30),
        lifetime=timedelta(hours=12),
    )


def _stores(factory: SqlUnitOfWorkFactory) -> tuple[TokenStore, SessionStore]:
    return TokenStore(factory.connections), _sessions(factory)


def _rows(factory: SqlUnitOfWorkFactory) -> list[tuple[object, ...]]:
    with factory.engine.connect() as db:
        return [tuple(r) for r in db.exec_driver_sql("SELECT * FROM sessions").fetchall()]


def test_a_session_is_found_by_its_id_and_stored_only_as_a_hash(
    factory: SqlUnitOfWorkFactory,
) -> None:
    tokens, sessions = _stores(factory)
    token, secret = tokens.create("ann", "coordinator", T0)
    session_id = sessions.open(token, T0)
    found = sessions.find(session_id, T0 + timedelta(minutes=1))
    assert found is not None and found.token.id == token.id
    (row,) = _rows(factory)
    assert row[0] == session_hash(factory.audit_key.derive(KEY_PURPOSE), session_id)
    assert session_id not in map(str, row) and secret not in map(str, row)
    assert sessions.find("unknown", T0) is None


def test_idle_and_absolute_expiry_refuse_and_delete(factory: SqlUnitOfWorkFactory) -> None:
    tokens, sessions = _stores(factory)
    token, _ = tokens.create("ann", "coordinator", T0)
    idle = sessions.open(token, T0)
    assert sessions.find(idle, T0 + timedelta(minutes=31)) is None
    busy = sessions.open(token, T0)
    for minutes in range(25, 12 * 60, 25):
        assert sessions.find(busy, T0 + timedelta(minutes=minutes)) is not None
    assert sessions.find(busy, T0 + timedelta(hours=12, seconds=1)) is None
    assert _rows(factory) == []


def test_revoking_the_token_and_signing_out_end_sessions(factory: SqlUnitOfWorkFactory) -> None:
    tokens, sessions = _stores(factory)
    ann, _ = tokens.create("ann", "coordinator", T0)
    bob, _ = tokens.create("bob", "coordinator", T0)
    a1, a2, b1 = sessions.open(ann, T0), sessions.open(ann, T0), sessions.open(bob, T0)
    tokens.revoke(ann.id, T0)
    assert sessions.find(a1, T0) is None and sessions.find(a2, T0) is None
    assert sessions.find(b1, T0) is not None
    sessions.close(b1)
    assert sessions.find(b1, T0) is None and _rows(factory) == []


def test_signing_in_purges_every_expired_session(factory: SqlUnitOfWorkFactory) -> None:
    tokens, sessions = _stores(factory)
    ann, _ = tokens.create("ann", "coordinator", T0)
    for _ in range(3):
        sessions.open(ann, T0)
    sessions.open(ann, T0 + timedelta(hours=1))
    assert len(_rows(factory)) == 1


def test_a_token_revoked_behind_the_stores_back_ends_its_sessions(
    factory: SqlUnitOfWorkFactory,
) -> None:
    tokens, sessions = _stores(factory)
    ann, _ = tokens.create("ann", "coordinator", T0)
    session_id = sessions.open(ann, T0)
    with factory.engine.begin() as db:  # e.g. by an older carepath, or by hand in SQL
        db.exec_driver_sql(f"UPDATE tokens SET revoked_at = created_at WHERE id = '{ann.id}'")
    assert sessions.find(session_id, T0) is None
    assert _rows(factory) == []


def test_a_session_row_written_into_the_database_opens_nothing(
    factory: SqlUnitOfWorkFactory, database_admin_url: str
) -> None:
    """Someone who can write the table (the application's role, or the SQLite file) but has no
    audit key adds a session for ann's token with an id of their choosing, hashed as they can:
    plainly, as sessions once were, or keyed by any key of theirs. None of it opens a session;
    a session id opened by the store opens only under the audit key it was opened with."""
    import hashlib
    import hmac

    from sqlalchemy import create_engine, text

    tokens, sessions = _stores(factory)
    token, _ = tokens.create("ann", "coordinator", T0)
    chosen = "attacker-chosen-session-id"
    forged = [
        hashlib.sha256(b"session\0" + chosen.encode()).hexdigest(),  # the unkeyed scheme
        hashlib.sha256(chosen.encode()).hexdigest(),
        hmac.new(b"\0" * 32, chosen.encode(), hashlib.sha256).hexdigest(),
        session_hash(AuditKey(bytes(range(32))).derive(KEY_PURPOSE), chosen),
    ]
    admin = create_engine(database_admin_url)
    try:
        with admin.begin() as db:
            for id_hash in forged:
                db.execute(
                    text(
                        "INSERT INTO sessions (id_hash, token_id, created_at, last_seen_at) "
                        "VALUES (:h, :t, :now, :now)"
                    ),
                    {"h": id_hash, "t": token.id, "now": factory.connections.backend.time(T0)},
                )
    finally:
        admin.dispose()
    assert sessions.find(chosen, T0 + timedelta(minutes=1)) is None
    opened = sessions.open(token, T0)
    assert sessions.find(opened, T0) is not None
    other_key = _sessions(factory, AuditKey(bytes(range(1, 33))))
    assert other_key.find(opened, T0) is None
