"""Google Calendar accounts against recorded API answers replayed by a local HTTP server:
a paged first sync, an incremental sync with its token, 410 Gone, and a revoked token."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from carcloud.calendars import google, graph
from carcloud.calendars.credentials import CredentialBox, derive_key
from carcloud.calendars.oauth import OAuthProvider
from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sources import SourceSettings
from carcloud.calendars.sync import SyncPolicy
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.errors import SourceError, ValidationError
from carcloud.storage import Stores
from tests.calendars.replay import ReplayServer

EVENTS = "/calendar/v3/calendars/primary/events"
PAGE_2 = "CigKGjRkcWZ2b3N2c2k1bmdwOGpxa2p0aGJqbDVuGAEggICA6J6R_hcaDAi1zqW6BhCAn5CkAw=="
TOKEN_1 = "CPjYzKf2sZEDEPjYzKf2sZEDGAUggICA6J6R_hc="
TOKEN_2 = "CKCd2b_3sZEDEKCd2b_3sZEDGAUggICA6J6R_hc="
WEEK = (dt.datetime(2026, 12, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 8, tzinfo=dt.UTC))


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        server.on("POST", "/token", "oauth/token.json")
        server.on("GET", EVENTS, "google/full_page1.json")
        server.on("GET", EVENTS, "google/full_page2.json", pageToken=PAGE_2)
        server.on("GET", EVENTS, "google/incremental.json", syncToken=TOKEN_1)
        yield server


@pytest.fixture
def service(stores: Stores, replay: ReplayServer) -> CalendarService:
    providers = {
        name: OAuthProvider(name, replay.url + api, replay.url + "/token", f"{name}-client", "s3")
        for name, api in (("google", "/calendar/v3"), ("graph", "/v1.0"))
    }
    return CalendarService(
        stores.calendars, DriverService(stores.drivers), CredentialBox(derive_key("t")),
        SourceSettings(allow_private=True, timeout_s=5.0), SyncPolicy(), providers,
    )  # fmt: skip


def google_draft(token: str = "1//0gLx-refresh-token-of-ada") -> AccountDraft:
    return AccountDraft("google", refresh_token=token)


async def titles(service: CalendarService, driver: Driver) -> dict[str, dict[str, object]]:
    entries = await service.agenda(driver, *WEEK)
    return {entry.title: entry.document(driver.zone) for entry in entries}


async def test_google_calendar_syncs_pages_then_changes_and_joins_meet_first(
    service: CalendarService, driver: Driver, replay: ReplayServer
) -> None:
    account = await service.add_account(driver.id, "volta", google_draft())
    assert account.state.status == "ok", account.state.error
    assert account.url == f"{replay.url}/calendar/v3/calendars/primary/events"
    report = account.state.report
    assert report is not None and (report.mode, report.requests, report.fetched) == ("full", 2, 4)
    refresh = replay.requests("/token")[0].form
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["refresh_token"] == "1//0gLx-refresh-token-of-ada"
    assert refresh["client_id"] == "google-client"
    first, second = replay.requests(EVENTS)
    assert first.headers["authorization"] == "Bearer ya29.a0AfB_byC-access-token-1"
    assert first.query["singleEvents"] == "true" and "timeMin" in first.query
    assert second.query["pageToken"] == PAGE_2

    agenda = await titles(service, driver)
    assert "Vendor pitch" not in agenda  # declined by the calendar's owner (self)
    review = agenda["Design review"]
    assert review["start_at"] == "2026-12-02T09:00:00Z"
    assert review["start_local"] == "2026-12-02T10:00:00+01:00"
    join = review["join"]
    assert isinstance(join, dict)
    assert (join["provider"], join["url"], join["source"]) == (
        "google_meet", "https://meet.google.com/abc-defg-hij", "conference",
    )  # fmt: skip
    assert join["dial_in"][0]["uri"] == "tel:+4930300195061,,123456789#"
    assert join["dial_in"][0]["pin"] == "123456789"
    assert review["coordinates"] == {"lat": 52.5076, "lon": 13.3904, "source": "place:Office"}
    # A recurring meeting's occurrence in its own zone; Zoom found in the location.
    standup = agenda["Standup"]
    assert standup["start_at"] == "2026-12-03T07:00:00Z"
    assert isinstance(standup["join"], dict) and standup["join"]["provider"] == "zoom"
    assert agenda["busy"]["title"] == "busy" and agenda["busy"]["location"] is None
    offsite = agenda["Offsite"]
    assert offsite["all_day"] is True and offsite["start_local"] == "2026-12-04T00:00:00+01:00"

    synced = await service.sync_now(account.id, None)
    report = synced.state.report
    assert report is not None
    assert (report.mode, report.requests, report.fetched, report.deleted) == ("delta", 1, 1, 1)
    assert replay.requests(EVENTS)[-1].query == {
        "singleEvents": "true", "maxResults": "250", "syncToken": TOKEN_1,
    }  # fmt: skip
    assert len(replay.requests("/token")) == 1  # the access token is still valid
    agenda = await titles(service, driver)
    assert "Offsite" not in agenda and "Design review" not in agenda
    assert agenda["Design review (moved)"]["start_at"] == "2026-12-02T13:00:00Z"

    replay.on("GET", EVENTS, "google/gone.json", status=410, syncToken=TOKEN_2)
    resynced = await service.sync_now(account.id, None)
    report = resynced.state.report
    assert report is not None and (report.mode, report.requests, report.fetched) == ("full", 3, 4)
    agenda = await titles(service, driver)
    assert "Design review (moved)" not in agenda  # replaced by the full listing
    assert {"Design review", "Offsite", "Standup", "busy"} <= agenda.keys()


async def test_a_revoked_refresh_token_puts_the_account_in_error_naming_it(
    service: CalendarService, driver: Driver, replay: ReplayServer
) -> None:
    account = await service.add_account(driver.id, "volta", google_draft())
    assert account.state.status == "ok"
    replay.on("GET", EVENTS, "google/unauthorized.json", status=401)
    replay.on("POST", "/token", "oauth/invalid_grant.json", status=400)
    failed = await service.sync_now(account.id, None)
    assert failed.state.status == "error"
    assert failed.state.error == (
        "the google refresh token was revoked or has expired (invalid_grant: Token has "
        "been expired or revoked.); connect the calendar again"
    )
    assert failed.state.last_success_at == account.state.last_success_at
    # The API's 401 made it refresh (a second token request), which was refused.
    assert len(replay.requests("/token")) == 2
    with pytest.raises(SourceError, match="invalid_grant"):
        await service.add_account(driver.id, "volta", google_draft("1//0g-revoked"))
    assert len(await service.list_accounts(driver.id, None)) == 1


def test_google_and_graph_drafts_are_checked(service: CalendarService, driver: Driver) -> None:
    with pytest.raises(ValidationError, match="needs the refresh_token"):
        service.prepare(driver, AccountDraft("google"))
    with pytest.raises(ValidationError, match="takes no url"):
        service.prepare(driver, AccountDraft("graph", url="https://x.example", refresh_token="r"))
    with pytest.raises(ValidationError, match="not a Google calendar id"):
        service.prepare(driver, AccountDraft("google", refresh_token="r", calendar_id="a/b"))
    with pytest.raises(ValidationError, match="for google and graph accounts, not caldav"):
        service.prepare(driver, AccountDraft("caldav", url="https://d.example/", refresh_token="r"))
    shared = service.prepare(
        driver,
        AccountDraft("google", refresh_token="r", calendar_id="team@group.calendar.google.com"),
    )
    assert shared.url.endswith("/calendars/team@group.calendar.google.com/events")
    assert "r" not in shared.document().values()
    assert google.API_URL.startswith("https://") and graph.API_URL.startswith("https://")
