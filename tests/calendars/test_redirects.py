"""Redirects of a calendar source are followed hop by hop, each target checked against the
address policy: an allowed (or public) feed cannot redirect the platform to an address it
may not reach; the allowed prefix lets exactly that feed through."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.drivers.models import Driver
from carcloud.errors import SourceError
from carcloud.storage import Stores
from tests.calendars.feedserver import FeedServer

FEED = (
    "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nBEGIN:VEVENT\nUID:r1\n"
    "DTSTAMP:20261101T000000Z\nDTSTART:20261202T090000Z\nDTEND:20261202T100000Z\n"
    "SUMMARY:Moved feed\nEND:VEVENT\nEND:VCALENDAR\n"
)


class Redirector:
    """Answers every GET with 302 to `target` (or to itself, to count the hops)."""

    def __init__(self, target: str | None = None) -> None:
        self.target = target
        self.hits = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                owner.hits += 1
                self.send_response(302)
                self.send_header("Location", owner.target or f"/again/{owner.hits}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def prefix(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.serve(FEED)
        yield server


def service(stores: Stores, calendars: CalendarService, *allowed: str) -> CalendarService:
    settings = SourceSettings(timeout_s=5.0, allowed_urls=allowed)
    return CalendarService(stores.calendars, calendars.drivers, calendars.box, settings)


async def test_a_redirect_into_a_refused_address_is_not_followed(
    feed: FeedServer, stores: Stores, driver: Driver, calendars: CalendarService
) -> None:
    redirector = Redirector(feed.url)
    try:
        strict = service(stores, calendars, redirector.prefix)
        with pytest.raises(SourceError, match="not a public address"):
            await strict.add_account(driver.id, "volta", AccountDraft("ics", redirector.prefix))
        assert redirector.hits == 1 and feed.hits == 0  # refused before it was asked

        # With the feed's own prefix allowed too, the redirect is followed.
        both = service(stores, calendars, redirector.prefix, feed.url.rsplit("/", 1)[0] + "/")
        account = await both.add_account(driver.id, "volta", AccountDraft("ics", redirector.prefix))
        assert account.state.status == "ok" and feed.hits == 1
    finally:
        redirector.close()


async def test_a_redirect_loop_ends(
    stores: Stores, driver: Driver, calendars: CalendarService
) -> None:
    loop = Redirector()
    try:
        allowed = service(stores, calendars, loop.prefix)
        with pytest.raises(SourceError, match="more than 5 redirects"):
            await allowed.add_account(driver.id, "volta", AccountDraft("ics", loop.prefix))
        assert loop.hits == 6
    finally:
        loop.close()
