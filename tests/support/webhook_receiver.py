"""A local webhook receiver for tests and the bench: a thread that verifies every request's
signature with the ``standardwebhooks`` package and records what it got.

``down()`` closes the port (connections refused), ``up()`` listens again on the same port;
``status`` is what it answers (500 makes the sender retry); ``delay`` holds each answer, so a
test can kill a sender mid-delivery. ``in_flight`` tracks concurrent requests per webhook-id.
"""

from __future__ import annotations

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
    got: list[Received] = field(default_factory=list)
    bad_signatures: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    max_in_flight: int = 0
    _in_flight: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
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

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # a sender's parallel batch must not overflow the backlog

        self._server = Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

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
