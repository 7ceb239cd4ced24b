"""A throwaway PostgreSQL cluster, for tests and benchmarks that need a real server.

``throwaway_postgres()`` runs ``initdb`` into a temporary directory and starts the server on a
free loopback port with fsync off (``-F``); leaving the block stops it and deletes everything.
The port is free when chosen but bound only once the server starts, seconds later: another
process (a test's outgoing connection, another cluster) may take it meanwhile, so a start that
finds it taken is tried again on another port.
As root the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).
``CAREPATH_TEST_POSTGRES_URL`` names an existing server instead; ``postgres_available()`` says
whether either is possible, so that callers can skip with a reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_URL = "CAREPATH_TEST_POSTGRES_URL"
PORT_ATTEMPTS = 5  # a port taken between choosing it and the server's start: another one


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, else ``pg_config --bindir``; None if nowhere."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
    bindir = Path(out.stdout.strip())
    return bindir if (bindir / "initdb").exists() else None


def postgres_available() -> str | None:
    """None if a server can be had; otherwise why not (for a skip reason)."""
    if os.environ.get(ENV_URL):
        return None
    if postgres_bindir() is None:
        return f"no PostgreSQL: {ENV_URL} is not set and initdb/pg_config are not installed"
    return None


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of ``CAREPATH_TEST_POSTGRES_URL`` if set, else of a throwaway cluster."""
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    with throwaway_postgres() as url:
        yield url


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a private cluster; yield its ``postgresql+psycopg://`` URL; stop and remove it."""
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL binaries not found (initdb, pg_config)")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="carepath-pg-"))
    if os.geteuid() == 0:  # PostgreSQL will not run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"

    def run(*args: str) -> None:
        proc = subprocess.run([*as_user, *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise RuntimeError(f"{args[0]} failed: {proc.stderr.strip()} {log[-2000:]}")

    try:
        run(
            str(bindir / "initdb"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
            str(data),
        )
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = _free_port()
            server_options = f"-k {root} -h 127.0.0.1 -p {port} -F -c max_connections=60"
            (root / "server.log").unlink(missing_ok=True)  # this attempt's log only
            try:
                run(
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "server.log"),
                    "-w",
                    "-o",
                    server_options,
                    "start",
                )
                break
            except RuntimeError as exc:
                if "Address already in use" not in str(exc) or attempt == PORT_ATTEMPTS:
                    raise
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
