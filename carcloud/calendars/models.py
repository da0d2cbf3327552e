"""Calendar accounts, their sync state, the calendar objects they hold, and sync reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from carcloud.calendars.places import Coordinates
from carcloud.timeutil import format_us

AccountKind = Literal["ics", "caldav", "google", "graph"]
ACCOUNT_KINDS: tuple[AccountKind, ...] = ("ics", "caldav", "google", "graph")
# The calendar APIs, reached with OAuth refresh tokens.
OAUTH_KINDS: tuple[AccountKind, ...] = ("google", "graph")
# feed: one document; sync-token/etag: CalDAV; full/delta: an API listed whole or its changes.
SyncMode = Literal["feed", "sync-token", "etag", "full", "delta"]


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync transferred: requests made, objects fetched, deleted and kept."""

    mode: SyncMode
    requests: int
    fetched: int
    deleted: int
    unchanged: int

    def document(self) -> dict[str, Any]:
        """The JSON form (also how it is stored)."""
        return {
            "mode": self.mode,
            "requests": self.requests,
            "fetched": self.fetched,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True, slots=True)
class SyncState:
    """Where an account's sync stands; `error` names what is wrong while it fails."""

    status: Literal["pending", "ok", "error"] = "pending"
    error: str | None = None
    failures: int = 0
    last_attempt_at: int | None = None
    last_success_at: int | None = None
    next_sync_at: int = 0
    sync_token: str | None = None
    report: SyncReport | None = None

    def document(self) -> dict[str, Any]:
        """The JSON form (the sync token is the server's business, not shown)."""
        return {
            "status": self.status,
            "error": self.error,
            "failures": self.failures,
            "last_attempt_at": format_us(self.last_attempt_at),
            "last_success_at": format_us(self.last_success_at),
            "next_sync_at": format_us(self.next_sync_at),
            "last_report": self.report.document() if self.report is not None else None,
        }


@dataclass(frozen=True, slots=True)
class CalendarAccount:
    """One calendar of a driver: an iCalendar feed, a CalDAV collection, a Google
    calendar or a Microsoft 365 (Graph) mailbox's calendar.

    `url` is what may be shown: a feed's URL usually carries a secret token, so its
    shown form keeps only the scheme and host; the real URL, any password and an API's
    refresh token are in `secret`, encrypted (`carcloud.calendars.credentials`).
    """

    id: str
    driver_id: str
    brand: str
    kind: AccountKind
    name: str
    url: str
    secret: str
    username: str | None = None
    owner_email: str | None = None
    created_at: int = 0
    state: SyncState = field(default_factory=SyncState)

    def document(self) -> dict[str, Any]:
        """The JSON form of the API: never the secret."""
        return {
            "id": self.id,
            "driver_id": self.driver_id,
            "kind": self.kind,
            "name": self.name,
            "url": self.url,
            "username": self.username,
            "owner_email": self.owner_email,
            "created_at": format_us(self.created_at),
            "sync": self.state.document(),
        }


@dataclass(frozen=True, slots=True)
class CalendarItem:
    """One calendar object: a VCALENDAR with every component of one UID, and its ETag."""

    href: str
    etag: str
    ics: str


@dataclass(frozen=True, slots=True)
class ItemChanges:
    """What a sync found: objects new or changed, hrefs gone (or `replace_all`), next token."""

    upserts: tuple[CalendarItem, ...] = ()
    deletes: tuple[str, ...] = ()
    replace_all: bool = False
    sync_token: str | None = None


@dataclass(frozen=True, slots=True)
class Geocode:
    """The geocoder's answer for a location text (`query`: folded, see
    `carcloud.calendars.geocoding.query_of`): a place, or none with the reason."""

    query: str
    lat: float | None
    lon: float | None
    label: str | None
    reason: str | None
    looked_up_at: int

    def coordinates(self) -> Coordinates | None:
        """Its coordinates, when it found a place."""
        if self.lat is None or self.lon is None:
            return None
        return Coordinates(self.lat, self.lon, "geocoder")
