"""A real HTTP server that receives webhooks in a test: it records every request and
answers as scripted per path (a status, after a delay)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return orjson.loads(self.body)


def verify(secret: str, request: Received, tolerance_s: float = 300.0) -> bool:
    """The receiver's check, as docs/webhooks.md shows it (written here independently)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    signed = f"{message_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, candidate.removeprefix("v1,"))
        for candidate in request.headers["webhook-signature"].split()
        if candidate.startswith("v1,")
    )


class Receiver:
    """A threading HTTP server on a free loopback port."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.delays: dict[str, float] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, delay = receiver._arrived(Received(self.path, headers, body,
                                                           time.monotonic()))  # fmt: skip
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def answer(self, path: str, *statuses: int) -> None:
        """The next answers on `path`, in order; then 204."""
        with self._lock:
            self.scripts[path] += [(status, 0.0) for status in statuses]

    def slow(self, path: str, delay_s: float) -> None:
        """Every answer on `path` comes after `delay_s`."""
        self.delays[path] = delay_s

    def _arrived(self, request: Received) -> tuple[int, float]:
        with self._lock:
            self.requests.append(request)
            script = self.scripts[request.path]
            status = script.pop(0)[0] if script else 204
        return status, self.delays.get(request.path, 0.0)

    def on(self, path: str) -> list[Received]:
        """The requests that arrived on `path`, in order."""
        with self._lock:
            return [request for request in self.requests if request.path == path]
