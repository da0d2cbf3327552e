"""A real HTTP server in a thread that replays recorded API answers (JSON fixture files).

Rules map a method, a path and some query parameters to a status and a fixture file;
the first rule that matches answers (later `on` calls go first, so a test can change
an answer). `{base}` in a fixture becomes the server's URL (Graph's links point back
at it). Every request is recorded with its query, headers and form body.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass(frozen=True)
class _Rule:
    method: str
    path: str
    query: dict[str, str]
    status: int
    fixture: str


class ReplayServer:
    """Serves fixture files by rule; `seen` lists the requests."""

    def __init__(self) -> None:
        self.rules: list[_Rule] = []
        self.seen: list[Seen] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                owner.seen.append(Seen(self.command, parts.path, query, headers, form))
                status, body = owner.answer(self.command, parts.path, query)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 - the names http.server calls

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, method: str, path: str, fixture: str, status: int = 200, **query: str) -> None:
        """Answer requests that match with the fixture (this rule before earlier ones)."""
        self.rules.insert(0, _Rule(method, path, query, status, fixture))

    def answer(self, method: str, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        for rule in self.rules:
            wanted = all(query.get(k) == v for k, v in rule.query.items())
            if rule.method == method and rule.path == path and wanted:
                text = (FIXTURES / rule.fixture).read_text().replace("{base}", self.url)
                return rule.status, text.encode()
        return 404, b'{"error": {"code": 404, "message": "no recorded answer"}}'

    def requests(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
