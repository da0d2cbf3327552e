"""The calendar worker syncs accounts concurrently, within its limits in all and per server."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sync import CalendarSyncWorker, WorkerLimits
from carcloud.drivers.models import Driver
from carcloud.errors import ConfigError
from carcloud.storage import Stores

FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n"
    "DTSTAMP:20261101T000000Z\r\nDTSTART:20261202T090000Z\r\nDURATION:PT1H\r\n"
    "SUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


class SlowFeeds:
    """A real HTTP server whose feeds take `delay_s` each; it counts requests in flight
    per Host name (two names for one server count as two servers to the worker)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.peak_all = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                host = (self.headers.get("Host") or "").split(":")[0]
                with owner.lock:
                    owner.now[host] += 1
                    owner.peak[host] = max(owner.peak[host], owner.now[host])
                    owner.peak_all = max(owner.peak_all, sum(owner.now.values()))
                time.sleep(owner.delay_s)
                with owner.lock:
                    owner.now[host] -= 1
                body = FEED.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str, n: int) -> str:
        return f"http://{host}:{self.server.server_address[1]}/feed/{n}.ics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_accounts_sync_concurrently_within_the_limits_per_server(
    stores: Stores, calendars: CalendarService, driver: Driver
) -> None:
    feeds = SlowFeeds(delay_s=0.3)
    try:
        ids = []
        for n in range(24):  # 12 feeds on each of two host names of the server
            host = "127.0.0.1" if n % 2 else "localhost"
            account = calendars.prepare(driver, AccountDraft("ics", feeds.url(host, n)))
            ids.append((await stores.calendars.create_account(account)).id)
        stop = asyncio.Event()
        worker = CalendarSyncWorker(
            calendars.syncer, WorkerLimits(concurrency=8, per_host=3, batch=5), idle_s=0.05
        )
        started = time.monotonic()
        task = asyncio.create_task(worker.run(stop))
        try:
            async with asyncio.timeout(30):
                while True:
                    states = [(await calendars.get_account(i, None)).state for i in ids]
                    if all(state.status == "ok" for state in states):
                        break
                    await asyncio.sleep(0.05)  # noqa: ASYNC110 - polling a database
        finally:
            stop.set()
            await task
        took = time.monotonic() - started
    finally:
        feeds.close()
    # Never more than 3 at once against one host name, and both hosts served at once.
    assert feeds.peak["127.0.0.1"] == 3 and feeds.peak["localhost"] == 3
    assert feeds.peak_all == 6
    # 24 feeds of 0.3 s: 7.2 s one after another; 6 at a time, about 1.2 s.
    assert took < 4.0, took
    assert all(state.report and state.report.fetched == 1 for state in states)


def test_limits_from_settings_and_bad_values_named() -> None:
    limits = WorkerLimits.from_env(
        {"CARCLOUD_CALENDAR_CONCURRENCY": "64", "CARCLOUD_CALENDAR_PER_HOST": "4"}
    )
    assert (limits.concurrency, limits.per_host) == (64, 4)
    assert limits.host_limit("dav.example.org") == 4
    assert limits.host_limit("www.googleapis.com") == 64  # the provider APIs: no host limit
    assert limits.host_limit("graph.microsoft.com") == 64
    assert WorkerLimits.from_env({}) == WorkerLimits(concurrency=32, per_host=8)
    with pytest.raises(ConfigError, match="CARCLOUD_CALENDAR_CONCURRENCY must be a whole"):
        WorkerLimits.from_env({"CARCLOUD_CALENDAR_CONCURRENCY": "many"})
    with pytest.raises(ConfigError, match="CARCLOUD_CALENDAR_PER_HOST must be at least 1"):
        WorkerLimits.from_env({"CARCLOUD_CALENDAR_PER_HOST": "0"})
