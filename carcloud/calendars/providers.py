"""Events of the calendar APIs (Google, Microsoft Graph) made into calendar objects, so
they take the agenda's one path (`occurrences`, `joining`, `places`) with CalDAV and feeds.

Each API event becomes one VCALENDAR with one VEVENT whose UID is the API's event id:
both APIs are asked for single occurrences (Google `singleEvents=true`, Graph's
calendarView), and each occurrence has an id of its own. Structured conference data
becomes RFC 7986 `CONFERENCE` properties, which the join ranking puts first; a phone
entry point with its PIN becomes a `tel:` URI with pauses. A meeting the account's
owner declined is left out here, as the API says who the owner is (`self`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

import icalendar
from icalendar.timezone import tzp

from carcloud.calendars.models import CalendarItem
from carcloud.errors import SourceError

_TAG = re.compile(r"<(br|/p|/div|/tr|/li)\b[^>]*>|<[^>]+>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Conference:
    """One way into a meeting from the API's structured data: a link or a phone number."""

    uri: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class ApiEvent:
    """What the agenda needs of one API event, in the API's own terms made explicit."""

    id: str
    etag: str
    summary: str
    start: dt.datetime | dt.date
    end: dt.datetime | dt.date
    status: str = "CONFIRMED"
    private: bool = False
    location: str | None = None
    geo: tuple[float, float] | None = None
    description: str | None = None
    url: str | None = None
    conferences: Sequence[Conference] = ()


def moment(value: str, zone_name: str | None, what: str) -> dt.datetime:
    """An aware datetime from an API's date-time text and zone (IANA or Windows name)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, _, fraction = text.partition(".")
    if fraction:  # Graph sends 7 fraction digits, more than fromisoformat reads
        digits = re.match(r"\d*", fraction)
        rest = fraction[digits.end() if digits else 0 :]
        text = f"{head}.{(digits.group(0) if digits else '')[:6].ljust(6, '0')}{rest}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SourceError(f"{what}: {value!r} is not a date-time") from None
    if parsed.tzinfo is not None:
        return parsed
    zone = tzp.timezone(zone_name or "UTC")
    if zone is None:
        raise SourceError(f"{what}: unknown time zone {zone_name!r}")
    return parsed.replace(tzinfo=zone)


def day(value: str, what: str) -> dt.date:
    """A date from an API's date text (all-day events)."""
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise SourceError(f"{what}: {value!r} is not a date") from None


def plain_text(markup: str) -> str:
    """The text of an HTML body (line breaks kept), for dial-in numbers and links."""
    return html.unescape(_TAG.sub(lambda m: "\n" if m.group(1) else "", markup)).strip()


def phone_uri(number: str, pin: str | None) -> str:
    """`tel:+NUMBER,,PIN#`: a dial-in number that a phone dials with its PIN in one tap."""
    digits = "+" + re.sub(r"\D", "", number)
    code = re.sub(r"\D", "", pin or "")
    return f"tel:{digits},,{code}#" if code else f"tel:{digits}"


def item_of(event: ApiEvent) -> CalendarItem:
    """The calendar object of an API event."""
    vevent = icalendar.Event()
    vevent.add("UID", event.id)
    vevent.add("DTSTAMP", dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # fixed: ETag is the API's
    vevent.add("DTSTART", event.start)
    vevent.add("DTEND", event.end)
    vevent.add("SUMMARY", event.summary)
    vevent.add("STATUS", event.status)
    if event.private:
        vevent.add("CLASS", "PRIVATE")
    if event.location:
        vevent.add("LOCATION", event.location)
    if event.geo is not None:
        vevent.add("GEO", event.geo)
    if event.description:
        vevent.add("DESCRIPTION", event.description)
    if event.url:
        vevent.add("URL", event.url)
    for conference in event.conferences:
        params = {"VALUE": "URI", **({"LABEL": conference.label} if conference.label else {})}
        vevent.add("CONFERENCE", conference.uri, parameters=params)
    calendar = icalendar.Calendar()
    calendar.add("VERSION", "2.0")
    calendar.add("PRODID", "-//carcloud//calendar api event//EN")
    calendar.add_component(vevent)
    etag = event.etag or hashlib.sha256(calendar.to_ical()).hexdigest()[:32]
    return CalendarItem(href=event.id, etag=etag, ics=calendar.to_ical().decode())
