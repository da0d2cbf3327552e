"""Microsoft Graph (Outlook) accounts against recorded API answers replayed by a local
HTTP server: a paged calendar view, its delta, removed and cancelled meetings, Teams."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.oauth import OAuthProvider
from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.sync import SyncPolicy
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.storage import Stores
from tests.calendars.replay import ReplayServer

DELTA = "/v1.0/me/calendarView/delta"
SKIP = "R0usmcCM996atia_s3hJ0UNiqD2rIeRL8GIzp0iS4SiubFCwG3qdgBxHzhDUlBYpyRWx1B9Ag4kP"
DELTA_1 = "R0usmci39OQxqJrxK4DKJ6Ozt7Vs2QoFyeBoVFWrYOmUrzVbTPxWNlWMbOmbnyd0"
DELTA_2 = "R0usmci39OQxqJrxK4DKJ6Ozt7Vs2QoFyeBoVFWrYOmUrzVbTPxWNlWMbOmbnyd1"
WEEK = (dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 8, tzinfo=dt.UTC))
BOX = CredentialBox(derive_key("t"))


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        server.on("POST", "/token", "oauth/token_rotated.json")
        server.on("GET", DELTA, "graph/page1.json")
        server.on("GET", DELTA, "graph/page2.json", **{"$skiptoken": SKIP})
        server.on("GET", DELTA, "graph/delta.json", **{"$deltatoken": DELTA_1})
        yield server


@pytest.fixture
def service(stores: Stores, replay: ReplayServer) -> CalendarService:
    graph = OAuthProvider("graph", replay.url + "/v1.0", replay.url + "/token", "app-id", "s3")
    return CalendarService(
        stores.calendars, DriverService(stores.drivers), BOX,
        SourceSettings(allow_private=True, timeout_s=5.0), SyncPolicy(), {"graph": graph},
    )  # fmt: skip


async def agenda(service: CalendarService, driver: Driver) -> dict[str, dict[str, object]]:
    entries = await service.agenda(driver, *WEEK)
    return {entry.title: entry.document(driver.zone) for entry in entries}


async def test_outlook_calendar_view_then_its_delta_with_teams_first(
    service: CalendarService, driver: Driver, replay: ReplayServer
) -> None:
    draft = AccountDraft("graph", refresh_token="0.AXkA-refresh-of-ada")
    account = await service.add_account(driver.id, "volta", draft)
    assert account.state.status == "ok", account.state.error
    report = account.state.report
    assert report is not None and (report.mode, report.requests, report.fetched) == ("full", 2, 4)
    first, second = replay.requests(DELTA)
    assert first.headers["prefer"] == 'outlook.timezone="UTC", odata.maxpagesize=200'
    assert first.headers["authorization"] == "Bearer eyJ0eXAiOiJKV1QiLCJub25jZSI6-access-token-2"
    assert {"startDateTime", "endDateTime"} <= first.query.keys()
    assert second.query == {"$skiptoken": SKIP}  # the next link carries the window
    # Microsoft rotated the refresh token: the new one is stored, sealed.
    stored = await service.get_account(account.id, None)
    assert BOX.open(stored.secret) == {"refresh_token": "1.AXkAc2Fs-rotated-refresh-token"}

    meetings = await agenda(service, driver)
    assert "Webinar we declined" not in meetings
    planning = meetings["Quarterly planning"]
    join = planning["join"]
    assert isinstance(join, dict)
    assert (join["provider"], join["source"]) == ("teams", "conference")
    assert str(join["url"]).startswith("https://teams.microsoft.com/l/meetup-join/19%3ameeting_")
    assert join["dial_in"][0]["uri"] == "tel:+4969120736253,,483920117#"
    assert planning["coordinates"] == {"lat": 53.5432, "lon": 9.9899, "source": "geo"}
    assert planning["start_at"] == "2026-12-02T08:00:00Z"
    # A time in a Windows zone name: 14:00 W. Europe Standard Time is 13:00 UTC.
    visit = meetings["Customer visit"]
    assert visit["start_at"] == "2026-12-03T13:00:00Z"
    assert visit["coordinates"] == {"lat": 52.5076, "lon": 13.3904, "source": "place:Office"}
    fair = meetings["Trade fair"]
    assert fair["all_day"] is True and fair["start_local"] == "2026-12-04T00:00:00+01:00"
    assert meetings["busy"]["location"] is None  # the private one

    synced = await service.sync_now(account.id, None)
    report = synced.state.report
    assert report is not None
    assert (report.mode, report.requests, report.fetched, report.deleted) == ("delta", 1, 1, 1)
    assert replay.requests(DELTA)[-1].query == {"$deltatoken": DELTA_1}
    meetings = await agenda(service, driver)
    assert "Trade fair" not in meetings  # @removed
    assert "Quarterly planning" not in meetings  # cancelled by its organizer
    assert {"Customer visit", "busy"} == meetings.keys()

    replay.on("GET", DELTA, "graph/gone.json", status=410, **{"$deltatoken": DELTA_2})
    again = await service.sync_now(account.id, None)
    report = again.state.report
    assert report is not None and (report.mode, report.requests, report.fetched) == ("full", 3, 4)
    assert "Trade fair" in await agenda(service, driver)
