"""The agenda: a driver's meetings in a range, from every account, in UTC and the driver's
zone, each with its place and how to join it.

An entry carries what the coming services need: coordinates for a leave-by
computation, join options for the car's call button, the driver's reminder lead and
buffer come from the profile.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
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


def _owners(accounts: Iterable[CalendarAccount]) -> dict[str, tuple[str, ...]]:
    """The addresses of each account's owner (whose declined meetings are left out)."""
    return {
        account.id: tuple(a for a in (account.owner_email, account.username) if a and "@" in a)
        for account in accounts
    }


def _overlaps(entry: AgendaEntry, start: dt.datetime, end: dt.datetime) -> bool:
    """The rule of `expand`: a meeting overlapping [start, end), or an instant in it."""
    return entry.start < end and (
        entry.end > start or (entry.end == entry.start and entry.start >= start)
    )


def _sorted(entries: Iterable[AgendaEntry]) -> list[AgendaEntry]:
    return sorted(entries, key=lambda entry: (entry.start, entry.end, entry.id))


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
    owners = _owners(accounts)
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
    return _sorted(entries)


# A calendar object's version: (account id, href, ETag). A feed's ETag is a hash of the
# object's text; CalDAV's, Google's and Graph's change with the object. An object
# stored without one (a server that gives none) is parsed on every read.
ItemVersion = tuple[str, str, str]
DAY = dt.timedelta(days=1)
MAX_SPAN = dt.timedelta(days=21)  # the longest window kept for several readers' windows


@dataclass(frozen=True, slots=True)
class _Expanded:
    """One driver's agenda over [start, end): each calendar object's entries."""

    depends: tuple[object, ...]  # what the entries are made with besides the objects
    start: dt.datetime
    end: dt.datetime
    by_item: dict[ItemVersion, tuple[AgendaEntry, ...]]
    size: int  # entries held, and one for the slot


class AgendaCache:
    """Each driver's agenda expanded over a window, kept until something it is made of
    changes, so that a worker reading every car's agenda every few seconds parses and
    expands nothing while the calendars stay as they are.

    Valid as long as (checked on every read, from what the caller read from the store,
    so a sync in another process is seen on the next read):
    - the driver's objects are the same versions (`ItemVersion`: one changed, added or
      removed object is parsed and expanded again, the others are kept);
    - the driver's zone and places (floating times, coordinates) and the accounts'
      owners (declined meetings) are the same;
    - the window read lies within the one expanded. A window is expanded with a day
      and a bit more beyond its end (the bit, up to another day, differs by driver, so
      a fleet's agendas do not all move on in the same pass); a window read that is
      not covered is expanded together with the one kept, up to `MAX_SPAN`, so that
      the worker's week and an API reader's range do not push each other out.

    Bounded by the entries held in all (`capacity`, a driver's slot counting as one);
    the drivers read least recently go first. An entry takes about 1 KiB (measured:
    bench/agenda_cache.py), a driver with 20 meetings in the worker's week ~30 KiB, so
    the default holds 10,000 such drivers in ~400 MiB at most. The parsed objects are
    not kept: only a changed object is parsed again.
    """

    def __init__(self, capacity: int = 400_000, slack: dt.timedelta = DAY) -> None:
        self.capacity = capacity
        self.slack = slack
        self._slots: OrderedDict[str, _Expanded] = OrderedDict()
        self._held = 0
        self.parsed = 0  # calendar objects parsed, for tests and benches
        self.hits = 0
        self.misses = 0

    @property
    def held(self) -> int:
        """Entries held, all drivers."""
        return self._held

    def __len__(self) -> int:
        return len(self._slots)

    def _slack(self, driver_id: str) -> dt.timedelta:
        spread = zlib.crc32(driver_id.encode()) % 86_400
        return self.slack + dt.timedelta(seconds=spread) * (self.slack / DAY)

    async def agenda(
        self,
        driver: Driver,
        accounts: Sequence[CalendarAccount],
        versions: Iterable[ItemVersion],
        items: Callable[[], Awaitable[list[tuple[str, CalendarItem]]]],
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[AgendaEntry]:
        """The driver's meetings overlapping [start, end), by start time: from memory
        when `versions` (the store's, read just before) and the driver are those
        expanded, else `items()` read and what changed parsed and expanded."""
        owners = _owners(accounts)
        depends: tuple[object, ...] = (
            driver.timezone,
            driver.places,
            tuple(sorted(owners.items())),
        )
        slot = self._slots.get(driver.id)
        covered = slot is not None and slot.start <= start and end <= slot.end
        if slot is not None and covered and slot.depends == depends:
            known = set(versions)
            if known == slot.by_item.keys() and not any(etag == "" for _, _, etag in known):
                self.hits += 1
                self._slots.move_to_end(driver.id)
                return _sorted(
                    entry for held in slot.by_item.values() for entry in held
                    if _overlaps(entry, start, end)
                )  # fmt: skip
            reuse, window = slot.by_item, (slot.start, slot.end)
        else:
            reuse, window = {}, (start, end + self._slack(driver.id))
            if slot is not None and slot.depends == depends:
                # Readers of other windows (the API, calls) in the worker's process: one
                # window covering both, unless it gets long (then the new one alone).
                both = (min(slot.start, window[0]), max(slot.end, window[1]))
                if both[1] - both[0] <= MAX_SPAN:
                    window = both
        self.misses += 1
        zone = driver.zone
        by_item: dict[ItemVersion, tuple[AgendaEntry, ...]] = {}
        for account_id, item in await items():
            key = (account_id, item.href, item.etag)
            if key in reuse and item.etag:  # no ETag (a server without): read each time
                by_item[key] = reuse[key]
                continue
            self.parsed += 1
            try:
                calendar = parse_calendar(item.ics, item.href)
            except SourceError:
                by_item[key] = ()
                continue
            by_item[key] = tuple(
                entry_of(occurrence, driver)
                for occurrence in expand(
                    calendar, account_id, window[0], window[1], zone, owners.get(account_id, ())
                )
            )
        size = 1 + sum(len(held) for held in by_item.values())  # the slot counts as one
        self._keep(driver.id, _Expanded(depends, window[0], window[1], by_item, size))
        return _sorted(
            entry for held in by_item.values() for entry in held if _overlaps(entry, start, end)
        )

    def _keep(self, driver_id: str, expanded: _Expanded) -> None:
        old = self._slots.pop(driver_id, None)
        if old is not None:
            self._held -= old.size
        if expanded.size > self.capacity:
            return  # larger than the whole cache: read each time
        self._slots[driver_id] = expanded
        self._held += expanded.size
        while self._held > self.capacity:
            _, gone = self._slots.popitem(last=False)
            self._held -= gone.size

    def forget(self, driver_id: str) -> None:
        """Drop a driver's agenda (it is read again from the store next time)."""
        old = self._slots.pop(driver_id, None)
        if old is not None:
            self._held -= old.size
