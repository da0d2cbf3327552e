"""An in-memory CalDAV server for benchmarks: the few requests a carcloud sync makes,
answered as Radicale answers them, at a fraction of Radicale's cost per request.

    python bench/caldav_standin.py --port PORT --accounts N --events E [--latency-ms MS]

It serves /ada/c{n}/ (n < N), each calendar holding E events e{i}.ics, and answers
PROPFIND depth 0 (the probe), REPORT sync-collection (RFC 6578; tokens are a global
change counter), REPORT calendar-multiget and PUT (an edit: new ETag, new token).
Any Basic credentials are accepted. It is no CalDAV server: it exists so that a
benchmark can tell carcloud's cost of a sync from the CalDAV server's (Radicale runs
in one Python process and is the first limit on this machine). `--latency-ms` delays
each answer, as the round trip to a server on the internet does (tens to hundreds of ms).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from xml.sax.saxutils import escape

import uvicorn

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_TOKEN = "http://carcloud.bench/sync/"
_HREF = re.compile(rb"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>")
_SYNC_TOKEN = re.compile(rb"<(?:\w+:)?sync-token>([^<]*)</(?:\w+:)?sync-token>")
_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
)


def event(uid: str, summary: str, day: int) -> str:
    """One meeting as a VCALENDAR (the benchmarks' events)."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:202612{day:02d}T090000Z\r\n"
        f"DURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Calendars:
    """The calendars: href -> (ETag, text), and for each href the change it was made in."""

    def __init__(self, accounts: int, events: int) -> None:
        self.version = 1
        self.items: dict[str, dict[str, tuple[str, str]]] = {}
        self.changed: dict[str, dict[str, int]] = {}
        for a in range(accounts):
            path = f"/ada/c{a}/"
            self.items[path] = {}
            self.changed[path] = {}
            for e in range(events):
                self.put(path, f"{path}e{e}.ics", event(f"e{a}-{e}", f"Meeting {e}", 1 + e % 28))

    def put(self, path: str, href: str, text: str) -> None:
        self.version += 1
        etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:16] + '"'
        self.items[path][href] = (etag, text)
        self.changed[path][href] = self.version

    def token(self) -> str:
        return f"{_TOKEN}{self.version}"


def _response(href: str, props: str, status: str = "200 OK") -> str:
    return (
        f"<response><href>{escape(href)}</href><propstat><prop>{props}</prop>"
        f"<status>HTTP/1.1 {status}</status></propstat></response>"
    )


def app_of(
    calendars: Calendars, latency_s: float = 0.0
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application over `calendars`, answering each request after `latency_s`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, text = answer(scope["method"], scope["path"], body)
        if latency_s:
            await asyncio.sleep(latency_s)
        payload = text.encode()
        kind = b"application/xml; charset=utf-8" if status == 207 else b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", kind),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def answer(method: str, path: str, body: bytes) -> tuple[int, str]:
        if method == "PUT":
            folder = path.rsplit("/", 1)[0] + "/"
            if folder not in calendars.items:
                return 404, "no such calendar"
            calendars.put(folder, path, body.decode())
            return 204, ""
        if path not in calendars.items:
            return 404, "no such calendar"
        members = calendars.items[path]
        if method == "PROPFIND":
            props = (
                "<resourcetype><collection/><C:calendar/></resourcetype>"
                f"<displayname>{path.strip('/')}</displayname>"
                f"<sync-token>{calendars.token()}</sync-token>"
                "<supported-report-set><supported-report><report><sync-collection/>"
                "</report></supported-report></supported-report-set>"
            )
            return 207, _HEAD + _response(path, props) + "</multistatus>"
        if method != "REPORT":
            return 405, "not here"
        if b"sync-collection" in body:
            found = _SYNC_TOKEN.search(body)
            given = found.group(1).decode() if found else ""
            if given and not given.startswith(_TOKEN):
                return 403, "valid-sync-token"
            since = int(given.removeprefix(_TOKEN)) if given else 0
            changed = calendars.changed[path]
            parts = [
                _response(href, f"<getetag>{escape(members[href][0])}</getetag>")
                for href, version in changed.items()
                if version > since
            ]
            token = f"<sync-token>{calendars.token()}</sync-token>"
            return 207, _HEAD + "".join(parts) + token + "</multistatus>"
        parts = []
        for raw in _HREF.findall(body):
            href = raw.decode()
            if href in members:
                etag, text = members[href]
                data = (
                    f"<getetag>{escape(etag)}</getetag>"
                    f"<C:calendar-data>{escape(text)}</C:calendar-data>"
                )
                parts.append(_response(href, data))
        return 207, _HEAD + "".join(parts) + "</multistatus>"

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to each answer")
    args = parser.parse_args()
    app = app_of(Calendars(args.accounts, args.events), args.latency_ms / 1000)
    # Connections are kept 60 s between requests (uvicorn's default is 5 s): on a loaded
    # machine a connection's next request can come later than that, and a connection the
    # server closed meanwhile fails the request that reuses it (httpx does not retry).
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
        timeout_keep_alive=60,
    )  # fmt: skip


if __name__ == "__main__":
    main()
