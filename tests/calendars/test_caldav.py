"""CalDAV against a real Radicale: the agenda of a recurring meeting with a moved and a
cancelled occurrence, incremental sync that fetches only what changed, bad sources
refused with their reason, and a failing account that backs off without stopping others."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt

import pytest

from carcloud.calendars.service import AccountDraft, CalendarService
from carcloud.calendars.sync import CalendarSyncWorker
from carcloud.drivers.models import Driver
from carcloud.errors import SourceError, ValidationError
from carcloud.storage import Stores
from carcloud.timeutil import now_us
from tests.calendars.conftest import USERS
from tests.calendars.radicale import Radicale

UTC = dt.UTC
WEEK = (dt.datetime(2026, 12, 7, tzinfo=UTC), dt.datetime(2026, 12, 14, tzinfo=UTC))

TEAM_SYNC = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:team-sync@example.org
DTSTAMP:20261101T000000Z
DTSTART;TZID=America/New_York:20261207T100000
DTEND;TZID=America/New_York:20261207T103000
RRULE:FREQ=DAILY;COUNT=5
EXDATE;TZID=America/New_York:20261209T100000
SUMMARY:Team sync
LOCATION:Office
DESCRIPTION:Join: https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0
END:VEVENT
BEGIN:VEVENT
UID:team-sync@example.org
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=America/New_York:20261208T100000
DTSTART;TZID=America/New_York:20261208T130000
DTEND;TZID=America/New_York:20261208T133000
SUMMARY:Team sync (moved)
END:VEVENT
BEGIN:VEVENT
UID:team-sync@example.org
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=America/New_York:20261210T100000
DTSTART;TZID=America/New_York:20261210T100000
DTEND;TZID=America/New_York:20261210T103000
STATUS:CANCELLED
SUMMARY:Team sync
END:VEVENT
END:VCALENDAR
"""


def single(uid: str, summary: str, start: str) -> str:
    return (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nBEGIN:VEVENT\n"
        f"UID:{uid}\nDTSTAMP:20261101T000000Z\nDTSTART:{start}\nDURATION:PT1H\n"
        f"SUMMARY:{summary}\nEND:VEVENT\nEND:VCALENDAR\n"
    )


def caldav(url: str, user: str = "ada", password: str | None = None) -> AccountDraft:
    return AccountDraft("caldav", url, "Work", user, password or USERS[user])


async def test_recurring_meeting_with_moved_and_cancelled_occurrences(
    radicale: Radicale, calendars: CalendarService, driver: Driver
) -> None:
    url = radicale.make_calendar("ada", "work")
    radicale.put("ada", "work", "team-sync", TEAM_SYNC)
    account = await calendars.add_account(driver.id, "volta", caldav(url))
    assert account.state.status == "ok" and account.state.report is not None
    assert account.state.report.fetched == 1

    agenda = await calendars.agenda(driver, *WEEK)
    got = [entry.document(driver.zone) for entry in agenda]
    assert [(e["title"], e["start_at"], e["end_at"], e["start_local"]) for e in got] == [
        ("Team sync", "2026-12-07T15:00:00Z", "2026-12-07T15:30:00Z", "2026-12-07T16:00:00+01:00"),
        ("Team sync (moved)", "2026-12-08T18:00:00Z", "2026-12-08T18:30:00Z",
         "2026-12-08T19:00:00+01:00"),
        ("Team sync", "2026-12-11T15:00:00Z", "2026-12-11T15:30:00Z", "2026-12-11T16:00:00+01:00"),
    ]  # fmt: skip
    first = got[0]
    assert first["timezone"] == "Europe/Berlin"
    assert first["coordinates"] == {"lat": 52.5076, "lon": 13.3904, "source": "place:Office"}
    assert first["join"]["provider"] == "teams"
    assert len({e["id"] for e in got}) == 3


async def test_an_edit_on_the_server_arrives_with_only_the_change(
    radicale: Radicale, calendars: CalendarService, driver: Driver
) -> None:
    url = radicale.make_calendar("ada", "work")
    for n in range(1, 6):
        radicale.put("ada", "work", f"m{n}", single(f"m{n}", f"Meeting {n}", f"2026120{n}T090000Z"))
    account = await calendars.add_account(driver.id, "volta", caldav(url))
    assert account.state.report is not None
    assert (account.state.report.mode, account.state.report.fetched) == ("sync-token", 5)

    radicale.put("ada", "work", "m3", single("m3", "Meeting 3 in room 2", "20261203T100000Z"))
    synced = await calendars.sync_now(account.id, "volta")
    # One sync-collection REPORT with the token, one calendar-multiget of the one changed href.
    assert synced.state.report is not None
    assert synced.state.report.document() == {
        "mode": "sync-token", "requests": 2, "fetched": 1, "deleted": 0, "unchanged": 4,
    }  # fmt: skip
    agenda = await calendars.agenda(driver, dt.datetime(2026, 12, 1, tzinfo=UTC), WEEK[0])
    third = next(entry for entry in agenda if entry.uid == "m3")
    assert (third.title, third.start) == (
        "Meeting 3 in room 2",
        dt.datetime(2026, 12, 3, 10, tzinfo=UTC),
    )

    radicale.delete("ada", "work/m5.ics")
    synced = await calendars.sync_now(account.id, "volta")
    assert synced.state.report is not None
    assert (synced.state.report.requests, synced.state.report.deleted) == (1, 1)
    assert len(await calendars.agenda(driver, dt.datetime(2026, 12, 1, tzinfo=UTC), WEEK[0])) == 4

    unchanged = await calendars.sync_now(account.id, "volta")
    assert unchanged.state.report is not None
    assert (unchanged.state.report.requests, unchanged.state.report.fetched) == (1, 0)


async def test_sources_that_are_not_calendars_are_refused_with_the_reason(
    radicale: Radicale, calendars: CalendarService, driver: Driver, stores: Stores
) -> None:
    url = radicale.make_calendar("ada", "work")
    with pytest.raises(SourceError, match="is not a CalDAV calendar collection"):
        await calendars.add_account(driver.id, "volta", caldav(f"{radicale.url}/ada/"))
    with pytest.raises(SourceError, match=r"refused the credentials \(HTTP 401\)"):
        await calendars.add_account(driver.id, "volta", caldav(url, password="wrong"))
    with pytest.raises(SourceError, match="not found"):
        await calendars.add_account(driver.id, "volta", caldav(f"{radicale.url}/ada/nope/"))
    with pytest.raises(ValidationError, match="is not a valid caldav URL"):
        await calendars.add_account(driver.id, "volta", caldav("ftp://example.org/cal"))
    with pytest.raises(ValidationError, match="needs username and password"):
        await calendars.add_account(driver.id, "volta", AccountDraft("caldav", url))
    assert await calendars.list_accounts(driver.id, "volta") == []


async def test_a_failing_account_backs_off_and_the_others_sync(
    radicale: Radicale, calendars: CalendarService, driver: Driver, stores: Stores
) -> None:
    good_url = radicale.make_calendar("ada", "work")
    bad_url = radicale.make_calendar("ada", "gone")
    good = await calendars.add_account(driver.id, "volta", caldav(good_url))
    bad = await calendars.add_account(driver.id, "volta", caldav(bad_url))
    radicale.delete("ada", "gone/")
    radicale.put("ada", "work", "new", single("new", "Fresh", "20261208T080000Z"))
    for account in (good, bad):  # both due now
        await stores.calendars.save_state(
            account.id, dataclasses.replace(account.state, next_sync_at=0)
        )

    stop = asyncio.Event()
    worker = CalendarSyncWorker(calendars.syncer, idle_s=0.05)
    task = asyncio.create_task(worker.run(stop))

    async def synced() -> bool:
        failing = await calendars.get_account(bad.id, None)
        working = await calendars.get_account(good.id, None)
        report = working.state.report
        return failing.state.failures > 0 and report is not None and report.fetched > 0

    for _ in range(200):
        if await synced():
            break
        await asyncio.sleep(0.05)  # noqa: ASYNC110 - polling a database, no event to wait on
    assert await synced(), "the worker did not sync both accounts within 10 s"
    await asyncio.sleep(0.3)  # a few more idle rounds: the bad one must not be retried yet
    stop.set()
    await task

    failed = await calendars.get_account(bad.id, "volta")
    assert failed.state.status == "error" and failed.state.failures == 1
    assert "not found" in (failed.state.error or "")
    assert failed.state.last_success_at == bad.state.last_success_at
    assert failed.state.next_sync_at > now_us() + 20_000_000  # ~30 s ± 20 %
    ok = await calendars.get_account(good.id, "volta")
    assert ok.state.status == "ok" and ok.state.report is not None and ok.state.report.fetched == 1
    assert [e.title for e in await calendars.agenda(driver, *WEEK)] == ["Fresh"]
