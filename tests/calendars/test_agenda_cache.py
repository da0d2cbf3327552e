"""The agenda kept per driver (issue 13): a second read of unchanged calendars parses
nothing, and nothing stale is ever shown: an edit synced (here or by another process's
service over the same store), a change of the driver's places, a window past the one
expanded all show in the next read. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from carcloud.calendars.agenda import AgendaCache
from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.models import CalendarItem, ItemChanges, SyncState
from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.sync import SyncPolicy
from carcloud.drivers.models import Driver, Place
from carcloud.drivers.service import DriverService
from carcloud.storage import Stores
from carcloud.storage.postgres import postgres_stores
from carcloud.storage.sqlite import sqlite_stores
from tests.calendars.feedserver import FeedServer
from tests.pg import postgres_database

UTC = dt.UTC
DAY = dt.timedelta(days=1)
WEEK_START = dt.datetime(2026, 12, 7, tzinfo=UTC)


def feed_of(*events: tuple[str, str, str, str]) -> str:
    """A feed of (uid, start, title, location) events, an hour each."""
    body = []
    for uid, start, title, location in events:
        body += [
            "BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261101T000000Z", f"DTSTART:{start}",
            "DURATION:PT1H", f"SUMMARY:{title}", f"LOCATION:{location}", "END:VEVENT",
        ]  # fmt: skip
    return "\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *body,
                      "END:VCALENDAR", ""])  # fmt: skip


STANDUP = ("standup", "20261207T090000Z", "Standup", "Office")
REVIEW = ("review", "20261208T140000Z", "Review", "Customer site")
RETRO = ("retro", "20261210T100000Z", "Retro", "home")
LATER = ("later", "20261222T100000Z", "Planning", "Office")


@pytest.fixture
def feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
async def store_pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stores]:
    if request.param == "sqlite":
        opened = sqlite_stores(tmp_path / "carcloud.db")
        await opened.open()
        await opened.registry.create_brand("volta", "Volta")
        yield opened
        await opened.close()
        return
    async with postgres_database() as url:
        opened = postgres_stores(url)
        await opened.open()
        await opened.registry.create_brand("volta", "Volta")
        yield opened
        await opened.close()


def service(stores: Stores) -> CalendarService:
    """A calendar service with its own agenda cache, as each process has."""
    return CalendarService(
        stores.calendars,
        DriverService(stores.drivers),
        CredentialBox(derive_key("pepper-of-this-test")),
        SourceSettings(allow_private=True, timeout_s=5.0),
        SyncPolicy(interval_s=60, first_retry_s=30),
    )


async def a_driver(stores: Stores) -> Driver:
    draft = Driver(
        id="", brand="volta", name="Ada", timezone="Europe/Berlin",
        places=(Place("home", 52.52, 13.405), Place("Office", 52.5076, 13.3904)),
    )  # fmt: skip
    return await DriverService(stores.drivers).create(draft)


def week(days: int = 7) -> tuple[dt.datetime, dt.datetime]:
    return WEEK_START, WEEK_START + days * DAY


async def test_a_second_read_parses_nothing_and_an_edit_shows_after_its_sync(
    feed: FeedServer, store_pair: Stores
) -> None:
    calendars, driver = service(store_pair), await a_driver(store_pair)
    feed.serve(feed_of(STANDUP, REVIEW, RETRO))
    account = await calendars.add_account(driver.id, "volta", AccountDraft("ics", feed.url))
    cache = calendars.agendas
    first = [e.title for e in await calendars.agenda(driver, *week())]
    assert first == ["Standup", "Review", "Retro"]
    assert cache.parsed == 3
    # Later passes, once the standup is over, over unchanged calendars: nothing parsed.
    for _ in range(3):
        again = await calendars.agenda(driver, WEEK_START + dt.timedelta(hours=11), week()[1])
        assert [e.title for e in again] == ["Review", "Retro"]  # the standup is over
    assert cache.parsed == 3 and cache.hits == 3
    # The review is renamed and moved on the server: the next read after the sync shows
    # it, and only that object is parsed again.
    feed.serve(feed_of(STANDUP, ("review", "20261209T150000Z", "Review (moved)", "Customer site"),
                       RETRO))  # fmt: skip
    await calendars.sync_now(account.id, "volta")
    entries = await calendars.agenda(driver, *week())
    assert [(e.title, e.start.isoformat()) for e in entries] == [
        ("Standup", "2026-12-07T09:00:00+00:00"),
        ("Review (moved)", "2026-12-09T15:00:00+00:00"),
        ("Retro", "2026-12-10T10:00:00+00:00"),
    ]
    assert cache.parsed == 4
    # An event removed at the source is gone from the next read.
    feed.serve(feed_of(STANDUP, RETRO))
    await calendars.sync_now(account.id, "volta")
    assert [e.title for e in await calendars.agenda(driver, *week())] == ["Standup", "Retro"]
    assert cache.parsed == 4  # nothing new to parse: the removed one is dropped


async def test_another_process_sync_is_seen_by_a_reader_with_a_warm_cache(
    feed: FeedServer, store_pair: Stores
) -> None:
    # Two services over one store, each with its own cache: the worker's process reads,
    # the calendar worker's process syncs. No signal passes between them.
    reader, syncer = service(store_pair), service(store_pair)
    driver = await a_driver(store_pair)
    feed.serve(feed_of(STANDUP, REVIEW))
    account = await syncer.add_account(driver.id, "volta", AccountDraft("ics", feed.url))
    assert [e.title for e in await reader.agenda(driver, *week())] == ["Standup", "Review"]
    assert [e.title for e in await reader.agenda(driver, *week())] == ["Standup", "Review"]
    assert reader.agendas.hits == 1
    feed.serve(feed_of(STANDUP, ("review", "20261208T140000Z", "Review, room 4", "Office"), RETRO))
    await syncer.sync_now(account.id, "volta")
    entries = await reader.agenda(driver, *week())
    assert [e.title for e in entries] == ["Standup", "Review, room 4", "Retro"]
    review = entries[1]
    assert review.coordinates is not None and review.coordinates.source == "place:Office"
    # A second account added by the other process shows too.
    other = FeedServer()
    with other:
        other.serve(feed_of(("dentist", "20261211T080000Z", "Dentist", "Clinic")))
        await syncer.add_account(driver.id, "volta", AccountDraft("ics", other.url))
    titles = [e.title for e in await reader.agenda(driver, *week())]
    assert titles == ["Standup", "Review, room 4", "Retro", "Dentist"]


async def test_a_changed_place_and_a_moved_window_are_read_again(
    feed: FeedServer, store_pair: Stores
) -> None:
    calendars, driver = service(store_pair), await a_driver(store_pair)
    feed.serve(feed_of(STANDUP, RETRO, LATER))
    await calendars.add_account(driver.id, "volta", AccountDraft("ics", feed.url))
    home = [e for e in await calendars.agenda(driver, *week()) if e.title == "Retro"][0]
    assert home.coordinates is not None and (home.coordinates.lat, home.coordinates.lon) == (
        52.52, 13.405,
    )  # fmt: skip
    # The driver moves house (profile updated, as another process would): the retro
    # "at home" is planned to the new home on the next read.
    moved = dataclasses.replace(
        driver, places=(Place("home", 48.137, 11.575), Place("Office", 52.5076, 13.3904))
    )
    moved = await DriverService(store_pair.drivers).update(driver.id, "volta", moved)
    retro = [e for e in await calendars.agenda(moved, *week()) if e.title == "Retro"][0]
    assert retro.coordinates is not None and retro.coordinates.lat == 48.137
    # Two weeks on, the window is past the one expanded: the later meeting shows.
    later = (WEEK_START + 14 * DAY, WEEK_START + 21 * DAY)
    assert [e.title for e in await calendars.agenda(moved, *later)] == ["Planning"]


async def test_the_cache_is_bounded_by_the_entries_it_holds(
    feed: FeedServer, store_pair: Stores
) -> None:
    calendars = service(store_pair)
    calendars.agendas = AgendaCache(capacity=10)  # 3 entries + 1 per driver: 2 drivers fit
    feed.serve(feed_of(STANDUP, REVIEW, RETRO))
    drivers = []
    for _ in range(3):
        driver = await a_driver(store_pair)
        await calendars.add_account(driver.id, "volta", AccountDraft("ics", feed.url))
        drivers.append(driver)
    for driver in drivers:
        assert len(await calendars.agenda(driver, *week())) == 3
    assert len(calendars.agendas) == 2 and calendars.agendas.held == 8
    parsed = calendars.agendas.parsed
    await calendars.agenda(drivers[2], *week())  # kept: nothing parsed
    assert calendars.agendas.parsed == parsed
    await calendars.agenda(drivers[0], *week())  # went first: parsed again
    assert calendars.agendas.parsed == parsed + 3


async def test_a_reader_of_another_window_does_not_push_the_workers_out(
    feed: FeedServer, store_pair: Stores
) -> None:
    calendars, driver = service(store_pair), await a_driver(store_pair)
    feed.serve(feed_of(STANDUP, REVIEW, RETRO, LATER))
    await calendars.add_account(driver.id, "volta", AccountDraft("ics", feed.url))
    cache = calendars.agendas
    assert [e.title for e in await calendars.agenda(driver, *week())] == [
        "Standup", "Review", "Retro",
    ]  # fmt: skip
    # An API reader's range two weeks on: expanded with the worker's week.
    api = (WEEK_START + 14 * DAY, WEEK_START + 16 * DAY)
    assert [e.title for e in await calendars.agenda(driver, *api)] == ["Planning"]
    parsed = cache.parsed
    for _ in range(2):
        assert len(await calendars.agenda(driver, *week())) == 3
        assert [e.title for e in await calendars.agenda(driver, *api)] == ["Planning"]
    assert cache.parsed == parsed


async def test_an_object_without_etag_is_never_taken_from_memory(store_pair: Stores) -> None:
    calendars, driver = service(store_pair), await a_driver(store_pair)
    draft = AccountDraft("ics", "https://calendar.example.org/feed.ics")
    account = await store_pair.calendars.create_account(calendars.prepare(driver, draft))

    async def store(title: str) -> None:
        text = feed_of(("x", "20261208T140000Z", title, "Office"))
        changes = ItemChanges(upserts=(CalendarItem("/x.ics", "", text),))
        await store_pair.calendars.save_sync(account.id, changes, SyncState(status="ok"))

    await store("Before")
    assert [e.title for e in await calendars.agenda(driver, *week())] == ["Before"]
    await store("After")  # a server that gives no ETags: the version looks the same
    assert [e.title for e in await calendars.agenda(driver, *week())] == ["After"]
