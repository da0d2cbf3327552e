"""The agenda: a driver's meetings in a range, from every account, in UTC and the driver's
zone, each with its place and how to join it.

An entry carries what the coming services need: coordinates for a leave-by
computation, join options for the car's call button, the driver's reminder lead and
buffer come from the profile.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from carcloud.calendars.ics import parse_calendar
from carcloud.calendars.joining import JoinInfo, join_info
from carcloud.calendars.models import CalendarAccount, CalendarItem
from carcloud.calendars.occurrences import Occurrence, expand
from carcloud.calendars.places import Coordinates, coordinates
from carcloud.drivers.models import Driver
from carcloud.errors import SourceError

BUSY = "busy"


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    """One meeting as the driver sees it."""

    id: str
    account_id: str
    uid: str
    title: str
    start: dt.datetime
    end: dt.datetime
    all_day: bool
    busy_only: bool
    status: str
    location: str | None
    coordinates: Coordinates | None
    join: JoinInfo
    # Why a meeting with a location has no coordinates (carcloud.calendars.geocoding).
    coordinates_reason: str | None = None

    def document(self, zone: ZoneInfo) -> dict[str, Any]:
        """The JSON form: times in UTC and in `zone` (the driver's)."""
        return {
            "id": self.id,
            "account_id": self.account_id,
            "title": self.title,
            "busy_only": self.busy_only,
            "status": self.status.lower(),
            "all_day": self.all_day,
            "start_at": _utc(self.start),
            "end_at": _utc(self.end),
            "start_local": self.start.astimezone(zone).isoformat(),
            "end_local": self.end.astimezone(zone).isoformat(),
            "timezone": zone.key,
            "location": self.location,
            "coordinates": self.coordinates.document() if self.coordinates else None,
            "coordinates_reason": self.coordinates_reason,
            "join": self.join.document(),
        }


def entry_of(occurrence: Occurrence, driver: Driver) -> AgendaEntry:
    """An occurrence as an agenda entry: a private one keeps only its time."""
    event = occurrence.event
    entry_id = f"{occurrence.account_id}:{occurrence.key}"
    status = str(event.get("STATUS", "CONFIRMED")).upper()
    if occurrence.busy_only:
        return AgendaEntry(
            entry_id, occurrence.account_id, occurrence.uid, BUSY, occurrence.start,
            occurrence.end, occurrence.all_day, True, status, None, None, JoinInfo(),
        )  # fmt: skip
    location = str(event["LOCATION"]).strip() if event.get("LOCATION") else None
    return AgendaEntry(
        id=entry_id,
        account_id=occurrence.account_id,
        uid=occurrence.uid,
        title=str(event.get("SUMMARY", "")).strip() or "(no title)",
        start=occurrence.start,
        end=occurrence.end,
        all_day=occurrence.all_day,
        busy_only=False,
        status=status,
        location=location or None,
        coordinates=coordinates(event, location, driver),
        join=join_info(event),
    )


class ParsedItems:
    """Parsed calendar objects by (account, href, ETag): an agenda read parses only what
    changed since the last one. Bounded; the oldest go first."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._parsed: OrderedDict[tuple[str, str, str], icalendar.Calendar | None] = OrderedDict()

    def get(self, account_id: str, item: CalendarItem) -> icalendar.Calendar | None:
        """The parsed object (None for one that does not parse: it is left out)."""
        key = (account_id, item.href, item.etag)
        if key in self._parsed:
            self._parsed.move_to_end(key)
            return self._parsed[key]
        try:
            parsed: icalendar.Calendar | None = parse_calendar(item.ics, item.href)
        except SourceError:
            parsed = None
        self._parsed[key] = parsed
        while len(self._parsed) > self.capacity:
            self._parsed.popitem(last=False)
        return parsed


def build_agenda(
    driver: Driver,
    accounts: Iterable[CalendarAccount],
    items: Iterable[tuple[str, CalendarItem]],
    start: dt.datetime,
    end: dt.datetime,
    parsed: ParsedItems | None = None,
) -> list[AgendaEntry]:
    """The driver's meetings overlapping [start, end), by start time."""
    cache = parsed or ParsedItems()
    owners: Mapping[str, tuple[str, ...]] = {
        account.id: tuple(a for a in (account.owner_email, account.username) if a and "@" in a)
        for account in accounts
    }
    zone = driver.zone
    entries: list[AgendaEntry] = []
    for account_id, item in items:
        calendar = cache.get(account_id, item)
        if calendar is None:
            continue
        for occurrence in expand(
            calendar, account_id, start, end, zone, owners.get(account_id, ())
        ):
            entries.append(entry_of(occurrence, driver))
    entries.sort(key=lambda entry: (entry.start, entry.end, entry.id))
    return entries
