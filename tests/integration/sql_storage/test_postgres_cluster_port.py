"""The throwaway cluster chooses a free port, but the server binds it only seconds later (after
``initdb``): a port taken meanwhile, by another process's connection or another cluster, is
tried again on another one instead of failing every PostgreSQL test of that pytest worker."""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from storage import postgres_cluster


def test_a_port_taken_before_the_server_starts_is_replaced_by_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if postgres_cluster.postgres_bindir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true, so PostgreSQL is required: initdb is not installed")
        pytest.skip("initdb/pg_config are not installed")
    real, chosen = postgres_cluster._free_port, []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()

        def first_taken() -> int:
            chosen.append(taken.getsockname()[1] if not chosen else real())
            return chosen[-1]

        monkeypatch.setattr(postgres_cluster, "_free_port", first_taken)
        with postgres_cluster.throwaway_postgres() as url:
            assert len(chosen) == 2 and url.startswith("postgresql+psycopg://")
            assert f":{chosen[1]}/" in url
            plain = url.replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(plain, connect_timeout=30) as db:
                assert db.execute("SELECT 1").fetchone() == (1,)
