"""No patient fact and no patient ref in the application's logs, the server's access log included."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from tests.support.api_world import ApiWorld

SECRET_REF, SECRET_LABEL, SECRET_EGFR = "MRN-SECRET-9", "Label-SECRET", 43.21


def _application_lines(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged except by the test's HTTP client (httpx logs the URLs it requests)."""
    return "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )


def test_writes_and_refusals_log_no_fact_value_and_no_patient_ref(
    api: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"patient_ref": SECRET_REF, "label": SECRET_LABEL, "facts": {"egfr": SECRET_EGFR}}
    opened = api.call("POST", "/api/episodes", json=body)
    episode_id = opened.json()["outcome"]["episode_id"]
    path = f"/api/episodes/{episode_id}/observations"
    api.call("POST", path, json={"facts": {"egfr": 243.21}})  # refused: out of range
    api.call("POST", path, json={"facts": {"pain_score": 9, "fracture_levels": ["L2"]}})
    api.call("GET", f"/api/episodes?q={SECRET_REF}")
    logged = _application_lines(caplog)
    for secret in (SECRET_REF, SECRET_LABEL, str(SECRET_EGFR), "243.21", "L2"):
        assert secret not in logged


def _bound_socket() -> socket.socket:
    """A loopback socket on a free port, handed to uvicorn bound: no other process can take the
    port between choosing it and listening on it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_servers_access_log_drops_the_query_string(api: ApiWorld) -> None:
    """uvicorn configured as ``uvicorn.run`` configures it (its own logging config)."""
    listening = _bound_socket()
    port = listening.getsockname()[1]
    config = uvicorn.Config(api.app, host="127.0.0.1", port=port, lifespan="off")
    server = uvicorn.Server(config)
    access, capture = logging.getLogger("uvicorn.access"), _Lines()
    access.addHandler(capture)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60  # a hang guard
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/episodes?q={SECRET_REF}",
            headers=api.headers("coordinator"),
        )
        assert response.status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
        listening.close()
        access.removeHandler(capture)
    assert any('"GET /api/episodes HTTP/1.1" 200' in line for line in capture.lines), capture.lines
    assert not any(SECRET_REF in line for line in capture.lines)
