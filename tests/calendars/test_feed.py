"""An iCalendar feed served over HTTP: what the agenda makes of all-day and floating times,
Windows zone names, Google's X-WR-TIMEZONE, declined, cancelled and private events, GEO;
a feed sync that rewrites only the meetings that changed; feeds that are not iCalendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings, source_url
from carcloud.drivers.models import Driver
from carcloud.errors import SourceError, ValidationError
from carcloud.storage import Stores
from tests.calendars.feedserver import FeedServer

UTC = dt.UTC
WEEK = (dt.datetime(2026, 12, 7, tzinfo=UTC), dt.datetime(2026, 12, 14, tzinfo=UTC))

OUTLOOK = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:Microsoft Exchange Server 2010
BEGIN:VEVENT
UID:win-zone
DTSTAMP:20261101T000000Z
DTSTART;TZID=W. Europe Standard Time:20261207T090000
DTEND;TZID=W. Europe Standard Time:20261207T100000
SUMMARY:Windows zone
END:VEVENT
BEGIN:VEVENT
UID:floating
DTSTAMP:20261101T000000Z
DTSTART:20261208T120000
DTEND:20261208T123000
SUMMARY:Floating lunch
GEO:52.5;13.4
END:VEVENT
BEGIN:VEVENT
UID:all-day
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261209
DTEND;VALUE=DATE:20261211
SUMMARY:Trade fair
END:VEVENT
BEGIN:VEVENT
UID:declined
DTSTAMP:20261101T000000Z
DTSTART:20261210T080000Z
DTEND:20261210T090000Z
SUMMARY:Declined one
ATTENDEE;PARTSTAT=DECLINED:mailto:Ada@Example.org
ATTENDEE;PARTSTAT=ACCEPTED:mailto:bo@example.org
END:VEVENT
BEGIN:VEVENT
UID:accepted
DTSTAMP:20261101T000000Z
DTSTART:20261210T100000Z
DTEND:20261210T110000Z
SUMMARY:Accepted one
ATTENDEE;PARTSTAT=ACCEPTED:mailto:ada@example.org
END:VEVENT
BEGIN:VEVENT
UID:cancelled
DTSTAMP:20261101T000000Z
DTSTART:20261211T080000Z
DTEND:20261211T090000Z
STATUS:CANCELLED
SUMMARY:Called off
END:VEVENT
BEGIN:VEVENT
UID:private
DTSTAMP:20261101T000000Z
DTSTART:20261211T150000Z
DTEND:20261211T160000Z
CLASS:PRIVATE
SUMMARY:Doctor
LOCATION:Clinic\\, Main St 1
DESCRIPTION:https://zoom.us/j/999
END:VEVENT
END:VCALENDAR
"""

GOOGLE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Google Inc//Google Calendar 70.9054//EN
X-WR-CALNAME:ada@example.org
X-WR-TIMEZONE:America/New_York
BEGIN:VEVENT
UID:google-1
DTSTAMP:20261101T000000Z
DTSTART:20261207T140000Z
DTEND:20261207T150000Z
SUMMARY:Google UTC
END:VEVENT
BEGIN:VEVENT
UID:google-2
DTSTAMP:20261101T000000Z
DTSTART:20261208T090000
DTEND:20261208T100000
SUMMARY:Google floating
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def ics(url: str) -> AccountDraft:
    return AccountDraft("ics", url, "Outlook", owner_email="ada@example.org")


async def agenda_of(calendars: CalendarService, driver: Driver) -> list[dict[str, Any]]:
    entries = await calendars.agenda(driver, *WEEK)
    return [entry.document(driver.zone) for entry in entries]


async def test_outlook_feed_in_the_drivers_zone(
    feed: FeedServer, calendars: CalendarService, driver: Driver
) -> None:
    feed.serve(OUTLOOK)
    account = await calendars.add_account(driver.id, "volta", ics(feed.url))
    assert account.url == f"http://127.0.0.1:{feed.server.server_address[1]}/…"
    got = {e["title"]: e for e in await agenda_of(calendars, driver)}
    assert list(got) == ["Windows zone", "Floating lunch", "Trade fair", "Accepted one", "busy"]
    assert (got["Windows zone"]["start_at"], got["Windows zone"]["start_local"]) == (
        "2026-12-07T08:00:00Z", "2026-12-07T09:00:00+01:00",
    )  # fmt: skip
    # Floating: the driver's wall-clock time (Europe/Berlin).
    assert got["Floating lunch"]["start_at"] == "2026-12-08T11:00:00Z"
    assert got["Floating lunch"]["coordinates"] == {"lat": 52.5, "lon": 13.4, "source": "geo"}
    fair = got["Trade fair"]
    assert fair["all_day"] is True
    assert (fair["start_local"], fair["end_local"]) == (
        "2026-12-09T00:00:00+01:00", "2026-12-11T00:00:00+01:00",
    )  # fmt: skip
    busy = got["busy"]
    assert busy["busy_only"] is True and busy["start_at"] == "2026-12-11T15:00:00Z"
    assert (busy["location"], busy["join"], busy["coordinates"]) == (None, None, None)


async def test_google_feed_floating_times_are_in_the_calendars_zone(
    feed: FeedServer, calendars: CalendarService, driver: Driver
) -> None:
    feed.serve(GOOGLE)
    await calendars.add_account(driver.id, "volta", ics(feed.url))
    got = {e["title"]: e for e in await agenda_of(calendars, driver)}
    assert got["Google UTC"]["start_at"] == "2026-12-07T14:00:00Z"
    assert got["Google floating"]["start_at"] == "2026-12-08T14:00:00Z"  # 09:00 New York
    assert got["Google floating"]["start_local"] == "2026-12-08T15:00:00+01:00"


async def test_a_feed_sync_rewrites_only_what_changed(
    feed: FeedServer, calendars: CalendarService, driver: Driver, stores: Stores
) -> None:
    feed.serve(OUTLOOK)
    account = await calendars.add_account(driver.id, "volta", ics(feed.url))
    assert account.state.report is not None and account.state.report.fetched == 7
    feed.serve(OUTLOOK.replace("SUMMARY:Accepted one", "SUMMARY:Accepted one (room 4)"))
    synced = await calendars.sync_now(account.id, "volta")
    assert synced.state.report is not None
    assert synced.state.report.document() == {
        "mode": "feed", "requests": 1, "fetched": 1, "deleted": 0, "unchanged": 6,
    }  # fmt: skip
    titles = [e["title"] for e in await agenda_of(calendars, driver)]
    assert "Accepted one (room 4)" in titles


async def test_feeds_that_are_not_icalendar_are_refused(
    feed: FeedServer, calendars: CalendarService, driver: Driver
) -> None:
    feed.serve("<html><body>Sign in</body></html>")
    with pytest.raises(SourceError, match="HTML or XML page, not iCalendar"):
        await calendars.add_account(driver.id, "volta", ics(feed.url))
    feed.serve("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:notadate\nEND:VCALENDAR\n")
    with pytest.raises(SourceError, match="does not parse as iCalendar"):
        await calendars.add_account(driver.id, "volta", ics(feed.url))
    feed.serve("hello")
    with pytest.raises(SourceError, match="starts with 'hello', not BEGIN:VCALENDAR"):
        await calendars.add_account(driver.id, "volta", ics(feed.url))
    with pytest.raises(ValidationError, match="is not a valid ics URL"):
        await calendars.add_account(driver.id, "volta", ics("not a url"))
    assert await calendars.list_accounts(driver.id, None) == []


async def test_private_addresses_are_refused_unless_allowed(
    feed: FeedServer, stores: Stores, driver: Driver, calendars: CalendarService
) -> None:
    strict = CalendarService(stores.calendars, calendars.drivers, calendars.box, SourceSettings())
    feed.serve(OUTLOOK)
    with pytest.raises(SourceError, match="not a public address"):
        await strict.add_account(driver.id, "volta", ics(feed.url))


def test_webcal_urls_are_fetched_over_https() -> None:
    assert source_url(" webcal://cal.example.org/feed.ics?t=1 ", "ics") == (
        "https://cal.example.org/feed.ics?t=1"
    )
    with pytest.raises(ValidationError, match="is not a valid caldav URL"):
        source_url("webcal://cal.example.org/", "caldav")
