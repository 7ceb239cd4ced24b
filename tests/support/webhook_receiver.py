"""A local webhook receiver for tests and the bench: a thread that verifies every request's
signature with the ``standardwebhooks`` package and records what it got.

``down()`` stops listening (connections refused) but keeps the port bound, so that no other
process is given it meanwhile; ``up()`` listens again on the same port;
``status`` is what it answers (500 makes the sender retry); ``delay`` holds each answer, and
``hold`` (cleared) holds every answer until it is set, so a test can kill a sender mid-delivery
whatever the machine's load; ``settle()`` returns once every connection made so far has been
answered. ``in_flight`` tracks concurrent requests per webhook-id.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook


@dataclass
class Received:
    id: str
    body: dict[str, Any]
    at: float  # time.monotonic() when it arrived


@dataclass
class Receiver:
    secrets: list[str] = field(default_factory=list)  # whsec_… of every subscription posting here
    status: int = 204
    delay: float = 0.0
    hold: threading.Event | None = None  # while not set, every answer waits (a 60 s hang guard)
    got: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    max_in_flight: int = 0
    _in_flight: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _reserved: socket.socket | None = None  # the port, bound without listening, while down
    _open: int = 0  # connections accepted and not yet closed
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-body: nothing was delivered
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.arrived.set()
                ok = receiver.verify(body, headers)
                mid = headers.get("webhook-id", "")
                with receiver._lock:
                    receiver._in_flight[mid] += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver._in_flight[mid])
                try:
                    if receiver.delay:
                        time.sleep(receiver.delay)
                    if receiver.hold is not None:
                        receiver.hold.wait(60)
                    status = receiver.status if ok else 401
                    if ok and status < 300:
                        with receiver._lock:
                            receiver.got.append(Received(mid, orjson.loads(body), time.monotonic()))
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                finally:
                    with receiver._lock:
                        receiver._in_flight[mid] -= 1

            def do_GET(self) -> None:  # noqa: N802 - settle()'s probe
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a sender's parallel batch must not overflow the backlog

            def process_request(self, request: Any, client_address: Any) -> None:
                with receiver._lock:
                    receiver._open += 1
                super().process_request(request, client_address)

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    with receiver._lock:
                        receiver._open -= 1

        self._server = Server(("127.0.0.1", self.port), Handler)  # SO_REUSEADDR: beside _reserved
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            reserved = socket.socket()
            reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._server.server_close()
            reserved.bind(("127.0.0.1", self.port))  # not listening: connections are refused
            self._server, self._reserved = None, reserved

    def close(self) -> None:
        """Down for good: the port is released too."""
        self.down()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    def settle(self, seconds: float = 60) -> None:
        """Return once every connection made before this call has been answered and closed:
        connections are accepted in order, so once a probe is answered every earlier one has
        been accepted; then wait for their handlers (``seconds``: a hang guard only)."""
        probe = http.client.HTTPConnection("127.0.0.1", self.port, timeout=seconds)  # no proxy
        try:
            probe.request("GET", "/hook")
            assert probe.getresponse().status == 204
        finally:
            probe.close()
        deadline = time.monotonic() + seconds
        while True:
            with self._lock:
                if self._open == 0:
                    return
            assert time.monotonic() < deadline, f"{self._open} request(s) still open"
            time.sleep(0.01)

    def verify(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return True
            except Exception:
                continue
        with self._lock:
            self.bad_signatures += 1
        return False

    def ids(self) -> list[str]:
        with self._lock:
            return [r.id for r in self.got]
