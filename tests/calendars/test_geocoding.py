"""Meeting locations in free text get coordinates: the demo cities' places with no network,
then a Nominatim-compatible geocoder (a local server replaying recorded `/search?format=
jsonv2` answers), each text asked once; an unknown place, a geocoder that is down or on a
refused address leave the coordinates empty with a reason and the sync ok."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.geocoding import GeocoderSettings, search_url
from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.errors import ConfigError
from carcloud.runtime.launcher import free_port
from carcloud.sim.citygen import network_for
from carcloud.storage import Stores
from tests.calendars.feedserver import FeedServer
from tests.calendars.replay import ReplayServer

UTC = dt.UTC
WEEK = (dt.datetime(2026, 12, 7, tzinfo=UTC), dt.datetime(2026, 12, 14, tzinfo=UTC))
DEMO_OFFICE = network_for("berlin").places_of("office")[0]


def feed(*events: tuple[str, str, str]) -> str:
    """A feed of (uid, summary, extra lines) events on 8 December."""
    body = "".join(
        f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261101T000000Z\nDTSTART:20261208T{9 + n:02d}0000Z\n"
        f"DURATION:PT30M\nSUMMARY:{summary}\n{extra}END:VEVENT\n"
        for n, (uid, summary, extra) in enumerate(events)
    )
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}END:VCALENDAR\n"


MEETINGS = feed(
    ("tor", "Walk", "LOCATION:Brandenburger Tor\\, Berlin\n"),
    ("office", "Stand-up", "LOCATION:Office\n"),
    ("geo", "Lunch", "LOCATION:Somewhere\nGEO:52.5;13.4\n"),
    ("demo", "Demo visit", f"LOCATION:{DEMO_OFFICE.name}\n"),
    ("atlantis", "Offsite", "LOCATION:Atlantis Conference Hall\n"),
    ("munich", "Trade fair", "LOCATION:Marienplatz\\, München\n"),
)


@pytest.fixture
def nominatim() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        server.on(
            "GET", "/search", "nominatim/brandenburger_tor.json", q="Brandenburger Tor, Berlin"
        )
        server.on("GET", "/search", "nominatim/marienplatz.json", q="Marienplatz, München")
        server.on("GET", "/search", "nominatim/nothing.json", q="Atlantis Conference Hall")
        yield server


@pytest.fixture
def calendar_feed() -> Iterator[FeedServer]:
    with FeedServer() as server:
        server.serve(MEETINGS)
        yield server


def service_with(stores: Stores, geocoder: GeocoderSettings) -> CalendarService:
    return CalendarService(
        stores.calendars,
        DriverService(stores.drivers),
        CredentialBox(derive_key("pepper-of-this-test")),
        SourceSettings(allow_private=True, timeout_s=5.0),
        geocoder=geocoder,
    )


async def agenda(service: CalendarService, driver: Driver) -> dict[str, dict[str, Any]]:
    entries = await service.agenda(driver, *WEEK)
    return {entry.title: entry.document(driver.zone) for entry in entries}


async def test_locations_are_geocoded_at_the_sync_and_each_text_is_asked_once(
    stores: Stores, driver: Driver, nominatim: ReplayServer, calendar_feed: FeedServer
) -> None:
    settings = GeocoderSettings(url=f"{nominatim.url}/search", allow_private=True, interval_s=0)
    service = service_with(stores, settings)
    added = await service.add_account(driver.id, None, AccountDraft("ics", calendar_feed.url))
    assert added.state.status == "ok"

    # The sync asked for the three free texts only: not the driver's "Office", not the
    # event with GEO, not the demo city's place.
    asked = nominatim.requests("/search")
    assert sorted(seen.query["q"] for seen in asked) == [
        "Atlantis Conference Hall", "Brandenburger Tor, Berlin", "Marienplatz, München",
    ]  # fmt: skip
    assert all(seen.query["format"] == "jsonv2" and seen.query["limit"] == "1" for seen in asked)
    assert all(seen.headers["user-agent"].startswith("carcloud-geocoder/") for seen in asked)

    got = await agenda(service, driver)
    assert got["Walk"]["coordinates"] == {
        "lat": 52.5162699,
        "lon": 13.3777034,
        "source": "geocoder",
    }
    assert got["Walk"]["coordinates_reason"] is None
    assert got["Trade fair"]["coordinates"] == {
        "lat": 48.1373932, "lon": 11.5754485, "source": "geocoder",
    }  # fmt: skip
    assert got["Stand-up"]["coordinates"]["source"] == "place:Office"
    assert got["Lunch"]["coordinates"] == {"lat": 52.5, "lon": 13.4, "source": "geo"}
    berlin = network_for("berlin")
    assert got["Demo visit"]["coordinates"] == {
        "lat": berlin.node_lat[DEMO_OFFICE.node], "lon": berlin.node_lon[DEMO_OFFICE.node],
        "source": "demo:berlin",
    }  # fmt: skip
    assert got["Offsite"]["coordinates"] is None
    assert got["Offsite"]["coordinates_reason"] == (
        "the geocoder knows no place 'Atlantis Conference Hall'"
    )

    # The same texts again (other case and spacing) in a changed feed: nothing is asked,
    # neither at the sync nor by another process's agenda (the answers are in the store).
    calendar_feed.serve(
        MEETINGS.replace("END:VCALENDAR", "")
        + "BEGIN:VEVENT\nUID:again\nDTSTAMP:20261101T000000Z\nDTSTART:20261209T090000Z\n"
        "DURATION:PT30M\nSUMMARY:Again\nLOCATION:brandenburger  TOR\\, berlin\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:nowhere\nDTSTAMP:20261101T000000Z\nDTSTART:20261209T100000Z\n"
        "DURATION:PT30M\nSUMMARY:Nowhere again\nLOCATION:atlantis conference hall\nEND:VEVENT\n"
        "END:VCALENDAR\n"
    )
    synced = await service.sync_now(added.id, None)
    assert synced.state.status == "ok" and synced.state.report is not None
    assert synced.state.report.fetched == 2
    other = service_with(stores, settings)
    again = await agenda(other, driver)
    assert again["Again"]["coordinates"] == got["Walk"]["coordinates"]
    assert again["Nowhere again"]["coordinates"] is None
    assert "knows no place" in again["Nowhere again"]["coordinates_reason"]
    assert len(nominatim.requests("/search")) == 3


async def test_a_geocoder_that_is_down_leaves_a_reason_and_the_sync_ok(
    stores: Stores, driver: Driver, calendar_feed: FeedServer
) -> None:
    down = f"http://127.0.0.1:{free_port()}/search"
    service = service_with(stores, GeocoderSettings(url=down, allow_private=True, interval_s=0))
    added = await service.add_account(driver.id, None, AccountDraft("ics", calendar_feed.url))
    assert (added.state.status, added.state.error) == ("ok", None)
    got = await agenda(service, driver)
    # Asked once: after the failure it rests, so neither the sync's other texts nor the
    # agenda wait for a server that is down.
    assert service.locator.asked == 1
    assert got["Walk"]["coordinates"] is None
    reason = got["Walk"]["coordinates_reason"]
    assert reason.startswith("no coordinates for 'Brandenburger Tor, Berlin': the geocoder failed")
    assert "asked again" in reason
    # Places that need no geocoder are still there.
    assert got["Demo visit"]["coordinates"]["source"] == "demo:berlin"
    assert got["Stand-up"]["coordinates"]["source"] == "place:Office"


async def test_the_outbound_policy_refuses_a_private_geocoder_unless_allowed(
    stores: Stores, driver: Driver, nominatim: ReplayServer, calendar_feed: FeedServer
) -> None:
    settings = GeocoderSettings(url=f"{nominatim.url}/search", interval_s=0)
    service = service_with(stores, settings)
    added = await service.add_account(driver.id, None, AccountDraft("ics", calendar_feed.url))
    assert added.state.status == "ok"
    assert nominatim.requests("/search") == []
    got = await agenda(service, driver)
    assert got["Walk"]["coordinates"] is None
    assert "CARCLOUD_GEOCODER_ALLOW_PRIVATE=1" in got["Walk"]["coordinates_reason"]


async def test_without_a_geocoder_the_demo_places_still_have_coordinates(
    stores: Stores, driver: Driver, calendar_feed: FeedServer
) -> None:
    service = service_with(stores, GeocoderSettings(url=None))
    await service.add_account(driver.id, None, AccountDraft("ics", calendar_feed.url))
    got = await agenda(service, driver)
    assert got["Demo visit"]["coordinates"]["source"] == "demo:berlin"
    assert got["Offsite"]["coordinates"] is None
    assert (
        "no geocoder is configured (CARCLOUD_GEOCODER_URL)" in got["Offsite"]["coordinates_reason"]
    )


def test_the_geocoder_settings_come_from_the_environment() -> None:
    settings = GeocoderSettings.from_env(
        {
            "CARCLOUD_GEOCODER_URL": "https://nominatim.example.org/",
            "CARCLOUD_GEOCODER_INTERVAL_S": "0.5",
        }
    )
    assert (settings.url, settings.interval_s, settings.allow_private) == (
        "https://nominatim.example.org/search", 0.5, False,
    )  # fmt: skip
    assert GeocoderSettings.from_env({}).url is None
    with pytest.raises(ConfigError, match="CARCLOUD_GEOCODER_URL 'ftp://x' is not an http"):
        GeocoderSettings.from_env({"CARCLOUD_GEOCODER_URL": "ftp://x"})


async def test_the_geocoder_is_asked_a_few_texts_at_a_time(
    stores: Stores, driver: Driver, nominatim: ReplayServer, calendar_feed: FeedServer
) -> None:
    settings = GeocoderSettings(
        url=search_url(nominatim.url), allow_private=True, interval_s=0, per_sync=1, per_agenda=1
    )
    service = service_with(stores, settings)
    await service.add_account(driver.id, None, AccountDraft("ics", calendar_feed.url))
    assert len(nominatim.requests("/search")) == 1  # the sync's one
    got = await agenda(service, driver)  # asks one more
    assert len(nominatim.requests("/search")) == 2
    waiting = [
        title for title in ("Walk", "Offsite", "Trade fair")
        if "not geocoded yet" in (got[title]["coordinates_reason"] or "")
    ]  # fmt: skip
    assert len(waiting) == 1
    await agenda(service, driver)  # and the last one
    got = await agenda(service, driver)  # all known now: nothing asked
    assert len(nominatim.requests("/search")) == 3
    assert (
        got["Walk"]["coordinates"]["source"]
        == got["Trade fair"]["coordinates"]["source"]
        == ("geocoder")
    )
    assert "knows no place" in got["Offsite"]["coordinates_reason"]
