"""Meetings in a time range: recurrences expanded, times made explicit, and what the
driver will not attend left out.

Expansion is `recurring-ical-events` (RRULE, RDATE, EXDATE, and occurrences moved or
cancelled by a RECURRENCE-ID override); time zones are icalendar's (IANA and
Windows names, and the VTIMEZONEs a calendar carries). What this module decides:

- a floating time (no zone) is the driver's local time; an all-day event runs from
  the driver's midnight to the midnight after its last day;
- cancelled events and occurrences, and those the calendar's owner declined, are
  not meetings;
- an event marked private or confidential is only a busy time: no title, place or
  join details leave the calendar.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

# Wide enough for any zone offset: an event's zone is known only once it is read.
_MARGIN = dt.timedelta(hours=27)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One meeting (or one occurrence of a recurring one) in UTC."""

    account_id: str
    uid: str
    recurrence_id: dt.datetime | dt.date | None
    start: dt.datetime
    end: dt.datetime
    all_day: bool
    busy_only: bool
    event: icalendar.Event

    @property
    def key(self) -> str:
        """Stable within an account: the UID, and the original start when it recurs."""
        if self.recurrence_id is None:
            return self.uid
        return f"{self.uid}@{self.recurrence_id.isoformat()}"


def _moment(value: dt.datetime | dt.date, zone: ZoneInfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=zone)
        return aware.astimezone(dt.UTC)
    return dt.datetime.combine(value, dt.time(), zone).astimezone(dt.UTC)


def _addresses(value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [str(v) for v in values if v is not None]


def declined_by(event: icalendar.Event, owners: Iterable[str]) -> bool:
    """The calendar's owner (any of their addresses) declined this meeting."""
    wanted = {owner.strip().lower().removeprefix("mailto:") for owner in owners if owner}
    if not wanted:
        return False
    attendees = event.get("ATTENDEE")
    for attendee in attendees if isinstance(attendees, list) else [attendees]:
        if attendee is None:
            continue
        address = str(attendee).lower().removeprefix("mailto:")
        partstat = str(getattr(attendee, "params", {}).get("PARTSTAT", "")).upper()
        if address in wanted and partstat == "DECLINED":
            return True
    return False


def _status(event: icalendar.Event) -> str:
    return str(event.get("STATUS", "CONFIRMED")).upper()


def _busy_only(event: icalendar.Event) -> bool:
    return str(event.get("CLASS", "PUBLIC")).upper() in ("PRIVATE", "CONFIDENTIAL")


def expand(
    calendar: icalendar.Calendar,
    account_id: str,
    start: dt.datetime,
    end: dt.datetime,
    zone: ZoneInfo,
    owners: Iterable[str] = (),
) -> list[Occurrence]:
    """The occurrences of `calendar` that overlap [start, end) (aware datetimes)."""
    owners = tuple(owners)
    found: list[Occurrence] = []
    # The expansion sets RECURRENCE-ID on every occurrence, a single event's too; only a
    # series keeps it in the key, so that a single meeting moved keeps its id.
    series = {
        str(component.get("UID", ""))
        for component in calendar.walk("VEVENT")
        if any(component.get(name) is not None for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    }
    query = recurring_ical_events.of(calendar, components=["VEVENT"])
    for event in query.between(start - _MARGIN, end + _MARGIN):
        if _status(event) == "CANCELLED" or declined_by(event, owners):
            continue
        first = event.decoded("DTSTART")
        last = event.decoded("DTEND", None)
        all_day = not isinstance(first, dt.datetime)
        if last is None:
            duration = event.decoded("DURATION", None)
            if isinstance(duration, dt.timedelta):
                last = first + duration
            else:
                last = first + dt.timedelta(days=1) if all_day else first
        begins, ends = _moment(first, zone), _moment(last, zone)
        if ends < begins:
            ends = begins
        if not (begins < end and (ends > start or (ends == begins and begins >= start))):
            continue
        uid = str(event.get("UID", ""))
        recurrence = event.get("RECURRENCE-ID") if uid in series else None
        found.append(
            Occurrence(
                account_id=account_id,
                uid=uid,
                recurrence_id=recurrence.dt if recurrence is not None else None,
                start=begins,
                end=ends,
                all_day=all_day,
                busy_only=_busy_only(event),
                event=event,
            )
        )
    return found
