"""Google Calendar: `events.list` with sync tokens.

The first sync lists the calendar from a week back (`singleEvents=true`: recurring
meetings come as their occurrences), page by page (`nextPageToken`), and keeps the
`nextSyncToken` of the last page. Later syncs send only that token and get what
changed, deletions as `status: cancelled`. A token Google no longer accepts answers
HTTP 410 Gone: the calendar is listed again in full and replaces what was stored.

A date-time without an offset is in its event's `timeZone`, else in the calendar's
(`timeZone` of the answer, what a feed says with `X-WR-TIMEZONE`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import httpx

from carcloud.calendars.models import CalendarItem, ItemChanges, SyncMode, SyncReport
from carcloud.calendars.oauth import Grant, OAuthProvider, TokenCache, api_get
from carcloud.calendars.providers import ApiEvent, Conference, day, item_of, moment, phone_uri
from carcloud.calendars.sources import SourceSettings
from carcloud.errors import SourceError

API_URL = "https://www.googleapis.com/calendar/v3"
TOKEN_URL = "https://oauth2.googleapis.com/token"
PAGE_SIZE = "250"
MAX_PAGES = 200
HISTORY = dt.timedelta(days=7)


def provider() -> OAuthProvider:
    """Google's endpoints and the operator's client (CARCLOUD_GOOGLE_*)."""
    return OAuthProvider.from_env("google", API_URL, TOKEN_URL)


def events_url(api_url: str, calendar_id: str) -> str:
    """The events collection of a calendar (`primary`: the user's main calendar)."""
    return f"{api_url}/calendars/{quote(calendar_id, safe='@')}/events"


def _when(value: Any, zone: str | None, what: str) -> dt.datetime | dt.date:
    if not isinstance(value, dict):
        raise SourceError(f"{what} has no start or end")
    if value.get("dateTime"):
        return moment(str(value["dateTime"]), value.get("timeZone") or zone, what)
    if value.get("date"):
        return day(str(value["date"]), what)
    raise SourceError(f"{what} has neither dateTime nor date")


def _conferences(event: dict[str, Any]) -> list[Conference]:
    found: list[Conference] = []
    data = event.get("conferenceData") or {}
    solution = str((data.get("conferenceSolution") or {}).get("name") or "")
    for point in data.get("entryPoints") or []:
        uri, kind = str(point.get("uri") or ""), point.get("entryPointType")
        if kind == "video" and uri:
            found.append(Conference(uri, solution or str(point.get("label") or "")))
        elif kind == "phone" and uri:
            pin = point.get("pin") or point.get("accessCode") or point.get("passcode")
            number = uri.removeprefix("tel:")
            found.append(Conference(phone_uri(number, pin), str(point.get("label") or number)))
    if not found and event.get("hangoutLink"):
        found.append(Conference(str(event["hangoutLink"]), "Google Meet"))
    return found


def declined(event: dict[str, Any]) -> bool:
    """The calendar's owner (`self`) declined the meeting."""
    return any(
        attendee.get("self") and attendee.get("responseStatus") == "declined"
        for attendee in event.get("attendees") or []
    )


def api_event(event: dict[str, Any], zone: str | None) -> ApiEvent:
    """A Google event resource in the agenda's terms."""
    what = f"Google event {event.get('id')}"
    return ApiEvent(
        id=str(event["id"]),
        etag=str(event.get("etag") or ""),
        summary=str(event.get("summary") or ""),
        start=_when(event.get("start"), zone, what),
        end=_when(event.get("end"), zone, what),
        status="TENTATIVE" if event.get("status") == "tentative" else "CONFIRMED",
        private=event.get("visibility") in ("private", "confidential"),
        location=event.get("location") or None,
        description=event.get("description") or None,
        conferences=_conferences(event),
    )


async def sync(
    client: httpx.AsyncClient,
    url: str,
    grant: Grant,
    api: OAuthProvider,
    tokens: TokenCache,
    sync_token: str | None,
    settings: SourceSettings,
    held: int = 0,
) -> tuple[ItemChanges, SyncReport]:
    """What changed in the calendar at `url` (its events collection) since `sync_token`."""
    requests = 0
    full = sync_token is None
    params = {"singleEvents": "true", "maxResults": PAGE_SIZE}
    if full:
        since = dt.datetime.now(dt.UTC) - HISTORY
        params["timeMin"] = since.isoformat().replace("+00:00", "Z")
    else:
        params["syncToken"] = str(sync_token)
    upserts: dict[str, CalendarItem] = {}
    deletes: set[str] = set()
    for _ in range(MAX_PAGES):
        requests += 1
        status, page = await api_get(
            client, url, "the Google calendar's events", api, grant, tokens, settings,
            allow=(410,), params=params,
        )  # fmt: skip
        if status == 410:  # the sync token expired: list everything again
            if full:
                raise SourceError("Google answered 410 Gone to a full listing")
            changes, report = await sync(client, url, grant, api, tokens, None, settings)
            return changes, SyncReport(
                "full", report.requests + requests, report.fetched, report.deleted, 0
            )
        zone = page.get("timeZone")
        for event in page.get("items") or []:
            if not isinstance(event, dict) or not event.get("id"):
                continue
            event_id = str(event["id"])
            if event.get("status") == "cancelled" or declined(event):
                deletes.add(event_id)
                upserts.pop(event_id, None)
            else:
                upserts[event_id] = item_of(api_event(event, zone))
                deletes.discard(event_id)
        if page.get("nextPageToken"):
            params = {**params, "pageToken": str(page["nextPageToken"])}
            continue
        token = page.get("nextSyncToken")
        if not token:
            raise SourceError("Google's last page of events has no nextSyncToken")
        mode: SyncMode = "full" if full else "delta"
        unchanged = 0 if full else max(held - len(deletes) - len(upserts), 0)
        report = SyncReport(mode, requests, len(upserts), len(deletes), unchanged)
        changes = ItemChanges(tuple(upserts.values()), tuple(sorted(deletes)), full, str(token))
        return changes, report
    raise SourceError(f"Google's event listing has more than {MAX_PAGES} pages")
