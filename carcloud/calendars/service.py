"""The calendars' rules: accounts are checked when they are added, credentials are sealed,
and the agenda is made from what the last syncs stored."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from carcloud.calendars import google, graph
from carcloud.calendars.agenda import AgendaCache, AgendaEntry
from carcloud.calendars.credentials import CredentialBox
from carcloud.calendars.geocoding import GeocoderSettings, Locator
from carcloud.calendars.models import ACCOUNT_KINDS, OAUTH_KINDS, CalendarAccount, SyncState
from carcloud.calendars.oauth import OAuthProvider
from carcloud.calendars.sources import SourceSettings, redacted, source_url
from carcloud.calendars.store import CalendarStore
from carcloud.calendars.sync import CalendarSyncer, SyncPolicy, http_client
from carcloud.drivers.models import Driver
from carcloud.drivers.service import DriverService
from carcloud.errors import NotFoundError, SourceError, UnreachableError, ValidationError
from carcloud.timeutil import now_us

MAX_AGENDA_DAYS = 62
DEFAULT_NAMES = {"ics": "Calendar feed", "caldav": "CalDAV", "google": "Google Calendar",
                 "graph": "Outlook"}  # fmt: skip


@dataclass(frozen=True)
class AccountDraft:
    """What a caller gives to add a calendar: its kind, URL and credentials (for Google
    and Graph: the refresh token of the driver's consent, and Google's calendar id)."""

    kind: str
    url: str | None = None
    name: str | None = None
    username: str | None = None
    password: str | None = None
    owner_email: str | None = None
    refresh_token: str | None = None
    calendar_id: str | None = None


class CalendarService:
    """Calendar accounts of drivers, their sync, and the agenda."""

    def __init__(
        self,
        store: CalendarStore,
        drivers: DriverService,
        box: CredentialBox,
        settings: SourceSettings | None = None,
        policy: SyncPolicy | None = None,
        providers: Mapping[str, OAuthProvider] | None = None,
        geocoder: GeocoderSettings | None = None,
    ) -> None:
        self.store = store
        self.drivers = drivers
        self.settings = settings or SourceSettings.from_env()
        self.locator = Locator(store, drivers, geocoder)
        self.syncer = CalendarSyncer(
            store, box, self.settings, policy or SyncPolicy(), providers, self.locator
        )
        self.box = box
        # Each driver's expanded agenda, checked against the store's object versions
        # on every read (docs/benchmarks.md, the driver's day at fleet scale).
        self.agendas = AgendaCache()

    def prepare(self, driver: Driver, draft: AccountDraft) -> CalendarAccount:
        """An account of `driver` from a draft: checked and sealed, not yet stored or synced."""
        if draft.kind not in ACCOUNT_KINDS:
            raise ValidationError(
                f"kind must be one of {', '.join(ACCOUNT_KINDS)}, not {draft.kind!r}"
            )
        if draft.owner_email is not None and "@" not in draft.owner_email:
            raise ValidationError("owner_email must be an e-mail address")
        kind = next(k for k in ACCOUNT_KINDS if k == draft.kind)
        if kind in OAUTH_KINDS:
            shown, secret = self._api_account(draft)
        elif draft.refresh_token is not None or draft.calendar_id is not None:
            raise ValidationError(
                f"refresh_token and calendar_id are for google and graph accounts, not {kind}"
            )
        elif kind == "caldav":
            shown = source_url(draft.url or "", kind)
            if not draft.username or draft.password is None:
                raise ValidationError("a caldav account needs username and password")
            secret = self.box.seal({"password": draft.password})
        else:
            url = source_url(draft.url or "", kind)
            if draft.username or draft.password:
                raise ValidationError(
                    "an ics feed takes no username or password: they are in its URL"
                )
            shown, secret = redacted(url), self.box.seal({"url": url})
        name = (draft.name or "").strip() or DEFAULT_NAMES[kind]
        return CalendarAccount(
            id=f"cal_{secrets.token_hex(8)}",
            driver_id=driver.id,
            brand=driver.brand,
            kind=kind,
            name=name[:120],
            url=shown,
            secret=secret,
            username=draft.username,
            owner_email=draft.owner_email,
            created_at=now_us(),
            state=SyncState(next_sync_at=now_us()),
        )

    def _api_account(self, draft: AccountDraft) -> tuple[str, str]:
        """The shown URL and sealed refresh token of a Google or Graph account."""
        if not draft.refresh_token or not draft.refresh_token.strip():
            raise ValidationError(
                f"a {draft.kind} account needs the refresh_token of the driver's OAuth consent"
            )
        if draft.url or draft.password:
            raise ValidationError(f"a {draft.kind} account takes no url or password")
        api = self.syncer.providers[draft.kind]
        if draft.kind == "google":
            calendar_id = (draft.calendar_id or "primary").strip()
            if not calendar_id or any(c.isspace() or c == "/" for c in calendar_id):
                raise ValidationError(f"calendar_id {calendar_id!r} is not a Google calendar id")
            shown = google.events_url(api.api_url, calendar_id)
        elif draft.calendar_id is not None:
            raise ValidationError(
                "a graph account syncs the mailbox's default calendar: no calendar_id"
            )
        else:
            shown = graph.delta_url(api.api_url)
        return shown, self.box.seal({"refresh_token": draft.refresh_token.strip()})

    async def add_account(
        self, driver_id: str, brand: str | None, draft: AccountDraft
    ) -> CalendarAccount:
        """Add a calendar and sync it once; SourceError (422) if the source is not usable.

        A source that does not answer now is kept, with its error: the worker retries it.
        """
        driver = await self.drivers.get(driver_id, brand)
        account = await self.store.create_account(self.prepare(driver, draft))
        started = now_us()
        async with http_client(self.settings) as client:
            try:
                changes, report = await self.syncer.fetch(client, account)
            except SourceError:
                await self.store.delete_account(account.id, None)
                raise
            except UnreachableError as exc:
                # Not checkable now: kept with its error, and the worker tries again.
                await self.syncer.failed(account, started, str(exc))
                return await self.store.get_account(account.id, None)
            await self.syncer.succeeded(account, started, changes, report, client)
        return await self.store.get_account(account.id, None)

    async def list_accounts(self, driver_id: str, brand: str | None) -> list[CalendarAccount]:
        """A driver's calendar accounts with their sync state."""
        return await self.store.list_accounts(driver_id, brand)

    async def get_account(self, account_id: str, brand: str | None) -> CalendarAccount:
        """One account the caller can see."""
        return await self.store.get_account(account_id, brand)

    async def delete_account(self, account_id: str, brand: str | None) -> None:
        """Remove an account and what was synced from it."""
        await self.store.delete_account(account_id, brand)

    async def sync_now(self, account_id: str, brand: str | None) -> CalendarAccount:
        """Sync an account at once (not waiting for its schedule)."""
        account = await self.store.get_account(account_id, brand)
        async with http_client(self.settings) as client:
            await self.syncer.sync(client, account)
        return await self.store.get_account(account_id, brand)

    async def agenda(
        self, driver: Driver, start: dt.datetime, end: dt.datetime
    ) -> list[AgendaEntry]:
        """The driver's meetings overlapping [start, end)."""
        if end <= start:
            raise ValidationError("to must be after from")
        if end - start > dt.timedelta(days=MAX_AGENDA_DAYS):
            raise ValidationError(f"an agenda spans at most {MAX_AGENDA_DAYS} days")
        accounts = await self.store.list_accounts(driver.id, None)
        versions = await self.store.item_versions(driver.id)
        entries = await self.agendas.agenda(
            driver, accounts, versions, lambda: self.store.driver_items(driver.id), start, end
        )
        return await self.locator.place(entries)

    async def vehicle_agenda(
        self, vin: str, brand: str | None, start: dt.datetime, end: dt.datetime
    ) -> tuple[Driver, list[AgendaEntry]]:
        """The agenda of the vehicle's current driver; NotFoundError if it has none."""
        driver = await self.drivers.vehicle_driver(vin, brand)
        if driver is None:
            raise NotFoundError(
                f"vehicle {vin} has no current driver; set one with PUT /vehicles/{vin}/driver"
            )
        return driver, await self.agenda(driver, start, end)
