"""Microsoft Graph (Outlook, Microsoft 365): `/me/calendarView/delta`.

A round starts with the calendar view of a window (a day back, `WINDOW` ahead): the
occurrences of recurring meetings come expanded by Graph. Pages follow
`@odata.nextLink`; the last page's `@odata.deltaLink` is the next sync's token, and
asks only for what changed since (a removed occurrence comes as its id with
`@removed`). Times are asked in UTC (`Prefer: outlook.timezone="UTC"`); a time in
another zone is read with its zone, a Windows name included ("W. Europe Standard
Time"). A round's window is fixed when it starts, so a round older than `ROUND` is
started again (the window moves on), as is one whose token Graph no longer knows
(HTTP 410 Gone).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

from carcloud.calendars.models import CalendarItem, ItemChanges, SyncMode, SyncReport
from carcloud.calendars.oauth import Grant, OAuthProvider, TokenCache, api_get
from carcloud.calendars.providers import (
    ApiEvent,
    Conference,
    item_of,
    moment,
    phone_uri,
    plain_text,
)
from carcloud.calendars.sources import SourceSettings
from carcloud.errors import SourceError
from carcloud.timeutil import now_us

API_URL = "https://graph.microsoft.com/v1.0"
TOKEN_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
WINDOW = dt.timedelta(days=60)
ROUND = dt.timedelta(days=7)
MAX_PAGES = 200
HEADERS = {"Prefer": 'outlook.timezone="UTC", odata.maxpagesize=200'}


def provider() -> OAuthProvider:
    """Graph's endpoints and the operator's client (CARCLOUD_GRAPH_*)."""
    return OAuthProvider.from_env("graph", API_URL, TOKEN_URL)


def delta_url(api_url: str) -> str:
    """The calendar view delta of the signed-in user's default calendar."""
    return f"{api_url}/me/calendarView/delta"


def _when(value: Any, all_day: bool, what: str) -> dt.datetime | dt.date:
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise SourceError(f"{what} has no start or end")
    at = moment(str(value["dateTime"]), value.get("timeZone") or "UTC", what)
    return at.date() if all_day else at


def _conferences(event: dict[str, Any]) -> list[Conference]:
    meeting = event.get("onlineMeeting") or {}
    found: list[Conference] = []
    label = {"teamsForBusiness": "Microsoft Teams", "skypeForBusiness": "Skype for Business"}
    if meeting.get("joinUrl"):
        name = label.get(str(event.get("onlineMeetingProvider")), "")
        found.append(Conference(str(meeting["joinUrl"]), name))
    conference_id = meeting.get("conferenceId")
    numbers = [meeting.get("tollNumber"), *(meeting.get("tollFreeNumbers") or [])]
    numbers += [phone.get("number") for phone in meeting.get("phones") or []]
    for number in dict.fromkeys(n for n in numbers if n):
        found.append(Conference(phone_uri(str(number), conference_id), str(number)))
    return found


def api_event(event: dict[str, Any]) -> ApiEvent:
    """A Graph event resource in the agenda's terms."""
    what = f"Graph event {event.get('id')}"
    all_day = bool(event.get("isAllDay"))
    location = event.get("location") or {}
    coordinates = location.get("coordinates") or {}
    lat, lon = coordinates.get("latitude"), coordinates.get("longitude")
    body = event.get("body") or {}
    text = str(body.get("content") or event.get("bodyPreview") or "")
    if body.get("contentType") == "html":
        text = plain_text(text)
    return ApiEvent(
        id=str(event["id"]),
        etag=str(event.get("changeKey") or event.get("@odata.etag") or ""),
        summary=str(event.get("subject") or ""),
        start=_when(event.get("start"), all_day, what),
        end=_when(event.get("end"), all_day, what),
        status="CANCELLED" if event.get("isCancelled") else "CONFIRMED",
        private=event.get("sensitivity") in ("private", "confidential"),
        location=str(location.get("displayName") or "") or None,
        geo=(float(lat), float(lon)) if lat is not None and lon is not None else None,
        description=text or None,
        conferences=_conferences(event),
    )


def declined(event: dict[str, Any]) -> bool:
    """The mailbox's owner declined the meeting."""
    return (event.get("responseStatus") or {}).get("response") == "declined"


def _token(started: int, link: str) -> str:
    return f"{started}|{link}"


def _round(token: str | None) -> tuple[int, str] | None:
    if not token or "|" not in token:
        return None
    started, _, link = token.partition("|")
    if not started.isdigit() or now_us() - int(started) > ROUND.total_seconds() * 1e6:
        return None
    return int(started), link


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
    """What changed in the calendar view delta at `url` since `sync_token`."""
    current = _round(sync_token)
    full = current is None
    if current is None:
        started = now_us()
        begin = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        params: dict[str, str] | None = {
            "startDateTime": begin.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "endDateTime": (begin + WINDOW).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        link = url
    else:
        started, link = current
        params = None
    upserts: dict[str, CalendarItem] = {}
    deletes: set[str] = set()
    for requests in range(1, MAX_PAGES + 1):
        status, page = await api_get(
            client, link, "the Outlook calendar's changes", api, grant, tokens, settings,
            allow=(410,), params=params, headers=HEADERS,
        )  # fmt: skip
        if status == 410:
            if full:
                raise SourceError("Graph answered 410 Gone to a new calendar view round")
            changes, report = await sync(client, url, grant, api, tokens, None, settings)
            return changes, SyncReport(
                "full", report.requests + requests, report.fetched, report.deleted, 0
            )
        for event in page.get("value") or []:
            if not isinstance(event, dict) or not event.get("id"):
                continue
            event_id = str(event["id"])
            if "@removed" in event or declined(event):
                deletes.add(event_id)
                upserts.pop(event_id, None)
            else:
                upserts[event_id] = item_of(api_event(event))
                deletes.discard(event_id)
        params = None  # the links carry the window and the state
        if page.get("@odata.nextLink"):
            link = str(page["@odata.nextLink"])
            continue
        delta = page.get("@odata.deltaLink")
        if not delta:
            raise SourceError("Graph's last page of changes has no @odata.deltaLink")
        mode: SyncMode = "full" if full else "delta"
        unchanged = 0 if full else max(held - len(deletes) - len(upserts), 0)
        report = SyncReport(mode, requests, len(upserts), len(deletes), unchanged)
        changes = ItemChanges(
            tuple(upserts.values()), tuple(sorted(deletes)), full, _token(started, str(delta))
        )
        return changes, report
    raise SourceError(f"Graph's calendar view has more than {MAX_PAGES} pages")
