"""CalDAV: the few WebDAV requests a sync needs, made with httpx.

- `probe`: PROPFIND (depth 0) on the URL; it must be a calendar collection. Tells
  whether the server offers RFC 6578 `sync-collection`. Made when there is no sync
  token (a token already says both).
- `sync`: with a sync token, one `sync-collection` REPORT lists what changed since
  (new ETags and removed hrefs); without one (first sync, a token the server no longer
  accepts, or no RFC 6578), the members and ETags are listed (`sync-collection` with an
  empty token, else PROPFIND depth 1) and compared with the stored ETags. Only
  changed objects are then fetched, with `calendar-multiget`, 100 per request.

The `caldav` package from PyPI was considered: it is synchronous (requests/niquests),
so it would need a thread per account; these four requests are short to write.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

import httpx

from carcloud.calendars.models import CalendarItem, ItemChanges, SyncMode, SyncReport
from carcloud.calendars.sources import Answer, SourceSettings, request
from carcloud.errors import SourceError

DAV = "{DAV:}"
CALDAV = "{urn:ietf:params:xml:ns:caldav}"
MULTIGET_BATCH = 100
_SAFE = "/@:+,;=~!$&'()*"
_XML = {"Content-Type": "application/xml; charset=utf-8"}

_PROBE = """<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop>
<d:resourcetype/><d:displayname/><d:sync-token/><d:supported-report-set/>
</d:prop></d:propfind>"""
_MEMBERS = """<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getetag/></d:prop></d:propfind>"""
_SYNC = """<?xml version="1.0" encoding="utf-8"?>
<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token>
<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"""
_MULTIGET = """<?xml version="1.0" encoding="utf-8"?>
<c:calendar-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">
<d:prop><d:getetag/><c:calendar-data/></d:prop>{hrefs}</c:calendar-multiget>"""


@dataclass(frozen=True, slots=True)
class Collection:
    """What a probe found: the calendar's name and whether it has sync-collection."""

    name: str | None
    supports_sync: bool


@dataclass
class _Counter:
    requests: int = 0


def _multistatus(answer: Answer, what: str) -> ET.Element:
    try:
        root = ET.fromstring(answer.body)
    except ET.ParseError as exc:
        raise SourceError(f"{what}: the server's answer is not WebDAV XML ({exc})") from None
    if root.tag != f"{DAV}multistatus":
        raise SourceError(f"{what}: the server did not answer with a WebDAV multistatus")
    return root


def _ok_props(response: ET.Element) -> ET.Element | None:
    """The <prop> of the response's 200 propstat."""
    for propstat in response.findall(f"{DAV}propstat"):
        status = propstat.findtext(f"{DAV}status", "")
        if " 200 " in status + " ":
            return propstat.find(f"{DAV}prop")
    return None


def _href(response: ET.Element) -> str:
    return unquote((response.findtext(f"{DAV}href") or "").strip())


def _same_path(href: str, url: str) -> bool:
    return href.rstrip("/") == unquote(urlsplit(url).path).rstrip("/")


async def probe(
    client: httpx.AsyncClient, url: str, auth: httpx.Auth, settings: SourceSettings
) -> Collection:
    """The collection at `url`; SourceError if it is not a CalDAV calendar."""
    answer = await request(
        client, "PROPFIND", url, "the CalDAV calendar", settings,
        content=_PROBE, headers={**_XML, "Depth": "0"}, auth=auth,
    )  # fmt: skip
    if answer.status != 207:
        raise SourceError(
            f"{url} is not a WebDAV collection (PROPFIND answered HTTP {answer.status})"
        )
    root = _multistatus(answer, url)
    for response in root.findall(f"{DAV}response"):
        props = _ok_props(response)
        if props is None:
            continue
        kinds = props.find(f"{DAV}resourcetype")
        if kinds is None or kinds.find(f"{CALDAV}calendar") is None:
            found = ", ".join(child.tag.split("}")[-1] for child in kinds or []) or "none"
            raise SourceError(
                f"{url} is not a CalDAV calendar collection (its resource types: {found}); "
                "give the URL of one calendar, e.g. https://host/dav/USER/CALENDAR/"
            )
        reports = props.find(f"{DAV}supported-report-set")
        has_report = reports is not None and reports.find(f".//{DAV}sync-collection") is not None
        has_token = props.find(f"{DAV}sync-token") is not None
        return Collection(props.findtext(f"{DAV}displayname"), has_report or has_token)
    raise SourceError(f"{url}: the server sent no properties for the collection")


async def _sync_report(
    client: httpx.AsyncClient, url: str, auth: httpx.Auth, token: str, settings: SourceSettings,
    counter: _Counter,
) -> tuple[dict[str, str], list[str], str] | None:  # fmt: skip
    """(href -> ETag changed, hrefs removed, new token); None if the token is refused."""
    counter.requests += 1
    answer = await request(
        client, "REPORT", url, "the CalDAV sync-collection report", settings, allow=(403, 409),
        content=_SYNC.format(token=escape(token)), headers={**_XML, "Depth": "0"}, auth=auth,
    )  # fmt: skip
    if answer.status in (403, 409):
        if b"valid-sync-token" in answer.body or token:
            return None
        raise SourceError(f"{url} refused the sync-collection report (HTTP {answer.status})")
    root = _multistatus(answer, url)
    changed: dict[str, str] = {}
    removed: list[str] = []
    for response in root.findall(f"{DAV}response"):
        href = _href(response)
        if _same_path(href, url):
            continue
        status = response.findtext(f"{DAV}status", "")
        props = _ok_props(response)
        if " 404 " in status + " " or props is None:
            removed.append(href)
            continue
        changed[href] = (props.findtext(f"{DAV}getetag") or "").strip()
    new_token = root.findtext(f"{DAV}sync-token")
    if not new_token:
        raise SourceError(f"{url}: the sync-collection answer has no sync-token")
    return changed, removed, new_token


async def _members(
    client: httpx.AsyncClient, url: str, auth: httpx.Auth, settings: SourceSettings,
    counter: _Counter,
) -> dict[str, str]:  # fmt: skip
    counter.requests += 1
    answer = await request(
        client, "PROPFIND", url, "the CalDAV calendar's members", settings,
        content=_MEMBERS, headers={**_XML, "Depth": "1"}, auth=auth,
    )  # fmt: skip
    members: dict[str, str] = {}
    for response in _multistatus(answer, url).findall(f"{DAV}response"):
        href = _href(response)
        props = _ok_props(response)
        if _same_path(href, url) or props is None:
            continue
        kinds = props.find(f"{DAV}resourcetype")
        if kinds is not None and kinds.find(f"{DAV}collection") is not None:
            continue
        members[href] = (props.findtext(f"{DAV}getetag") or "").strip()
    return members


async def _multiget(
    client: httpx.AsyncClient, url: str, auth: httpx.Auth, hrefs: Iterable[str],
    settings: SourceSettings, counter: _Counter,
) -> list[CalendarItem]:  # fmt: skip
    wanted = sorted(hrefs)
    items: list[CalendarItem] = []
    for first in range(0, len(wanted), MULTIGET_BATCH):
        batch = wanted[first : first + MULTIGET_BATCH]
        body = "".join(f"<d:href>{escape(quote(href, safe=_SAFE))}</d:href>" for href in batch)
        counter.requests += 1
        answer = await request(
            client, "REPORT", url, "the CalDAV calendar-multiget report", settings,
            content=_MULTIGET.format(hrefs=body), headers={**_XML, "Depth": "1"}, auth=auth,
        )  # fmt: skip
        for response in _multistatus(answer, url).findall(f"{DAV}response"):
            props = _ok_props(response)
            data = props.findtext(f"{CALDAV}calendar-data") if props is not None else None
            if props is None or not data:
                continue  # removed since it was listed: the next sync sees it gone
            etag = (props.findtext(f"{DAV}getetag") or "").strip()
            items.append(CalendarItem(_href(response), etag, data))
    return items


async def sync(
    client: httpx.AsyncClient,
    url: str,
    auth: httpx.Auth,
    token: str | None,
    stored_etags: Callable[[], Awaitable[dict[str, str]]],
    settings: SourceSettings,
    held: int = 0,
) -> tuple[ItemChanges, SyncReport]:
    """Bring the stored objects (href -> ETag, read by `stored_etags`) up to the server's;
    see the module's doc. A sync token that reports no change reads nothing stored (most
    calendars are unchanged at most syncs): its report counts the `held` objects."""
    counter = _Counter()
    incremental = None
    if token:  # a token means the server has sync-collection: no probe needed
        incremental = await _sync_report(client, url, auth, token, settings, counter)
    if incremental is not None:
        changed, removed, new_token = incremental
        supports_sync = True
        if not changed and not removed:
            report = SyncReport("sync-token", counter.requests, 0, 0, held)
            return ItemChanges(sync_token=new_token), report
    else:  # first sync, or the server forgot the token: check the calendar, list it all
        counter.requests += 1
        collection = await probe(client, url, auth, settings)
        supports_sync = collection.supports_sync
        new_token = None
        if supports_sync:
            listed = await _sync_report(client, url, auth, "", settings, counter)
            if listed is None:
                raise SourceError(f"{url} refused a sync-collection report without a token")
            members, _, new_token = listed
        else:
            members = await _members(client, url, auth, settings, counter)
    stored = await stored_etags()
    if incremental is not None:
        fetch = {href for href, etag in changed.items() if stored.get(href) != etag or not etag}
        deletes = tuple(href for href in removed if href in stored)
        unchanged = len(stored) - len(deletes) - len(fetch & stored.keys())
    else:
        fetch = {href for href, etag in members.items() if stored.get(href) != etag or not etag}
        deletes = tuple(href for href in stored if href not in members)
        unchanged = len(members) - len(fetch)
    items = await _multiget(client, url, auth, fetch, settings, counter) if fetch else []
    mode: SyncMode = "sync-token" if supports_sync else "etag"
    report = SyncReport(mode, counter.requests, len(items), len(deletes), max(unchanged, 0))
    return ItemChanges(tuple(items), deletes, False, new_token), report
