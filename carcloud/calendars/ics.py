"""iCalendar text: parsed with a message that says what is wrong, and split into one
object per UID, so a feed is stored and compared like a CalDAV collection.

A feed is one document; splitting it by UID (the master event with its moved
occurrences) gives each meeting an ETag of its own (a hash of its text), so a feed
sync rewrites only the meetings that changed. Google's `X-WR-TIMEZONE` is applied
before the split: floating times in such a feed are in the calendar's zone.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

import httpx
import icalendar
import x_wr_timezone

from carcloud.calendars.models import CalendarItem, ItemChanges, SyncReport
from carcloud.calendars.sources import SourceSettings, request
from carcloud.errors import SourceError

_KEEP = ("VEVENT",)


def parse_calendar(text: str, what: str) -> icalendar.Calendar:
    """The VCALENDAR of `text`; SourceError naming `what` and the problem."""
    stripped = text.lstrip("\ufeff \r\n\t")
    if stripped[:1] == "<":
        raise SourceError(f"{what} is an HTML or XML page, not iCalendar (text/calendar)")
    if not stripped.upper().startswith("BEGIN:VCALENDAR"):
        first = stripped.splitlines()[0][:60] if stripped else "nothing"
        raise SourceError(f"{what} is not iCalendar: it starts with {first!r}, not BEGIN:VCALENDAR")
    try:
        calendar = icalendar.Calendar.from_ical(stripped)
    except (ValueError, KeyError, IndexError) as exc:
        raise SourceError(f"{what} does not parse as iCalendar: {exc}") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise SourceError(f"{what} does not hold one VCALENDAR")
    return calendar


def standard_calendar(calendar: icalendar.Calendar, what: str) -> icalendar.Calendar:
    """The calendar with `X-WR-TIMEZONE` applied to its floating and UTC times."""
    if "X-WR-TIMEZONE" not in calendar:
        return calendar
    try:
        standard: icalendar.Calendar = x_wr_timezone.to_standard(calendar)
    except Exception as exc:  # the library raises its own kinds for unknown zones
        raise SourceError(f"{what} has an unusable X-WR-TIMEZONE: {exc}") from None
    return standard


def split_by_uid(calendar: icalendar.Calendar) -> list[CalendarItem]:
    """One object per UID: its VEVENTs with the VTIMEZONEs the calendar carries."""
    zones = [zone for zone in calendar.walk("VTIMEZONE")]
    groups: dict[str, list[icalendar.Component]] = defaultdict(list)
    for component in calendar.subcomponents:
        if component.name in _KEEP:
            groups[str(component.get("UID", ""))].append(component)
    items = []
    for uid, components in sorted(groups.items()):
        single = icalendar.Calendar()
        single.add("VERSION", "2.0")
        single.add("PRODID", "-//carcloud//calendar feed item//EN")
        for zone in zones:
            single.add_component(zone)
        for component in components:
            single.add_component(component)
        text = single.to_ical().decode()
        etag = hashlib.sha256(text.encode()).hexdigest()[:32]
        items.append(CalendarItem(href=uid or f"no-uid-{etag}", etag=etag, ics=text))
    return items


def feed_changes(
    items: list[CalendarItem], stored: dict[str, str]
) -> tuple[ItemChanges, SyncReport]:
    """What changed between a feed's objects and the stored ETags."""
    upserts = tuple(item for item in items if stored.get(item.href) != item.etag)
    present = {item.href for item in items}
    deletes = tuple(href for href in stored if href not in present)
    report = SyncReport("feed", 1, len(upserts), len(deletes), len(items) - len(upserts))
    return ItemChanges(upserts=upserts, deletes=deletes), report


async def fetch_feed(
    client: httpx.AsyncClient, url: str, settings: SourceSettings
) -> list[CalendarItem]:
    """The objects of an iCalendar feed; SourceError or UnreachableError naming the problem."""
    answer = await request(
        client, "GET", url, "the iCalendar feed", settings, headers={"Accept": "text/calendar"}
    )
    calendar = standard_calendar(parse_calendar(answer.text, "the feed"), "the feed")
    return split_by_uid(calendar)
