"""What the calendars slice needs persisted: accounts with their sync state, and the
calendar objects last synced from each.

A sync's objects, the account's new state and its `agenda.changed` event are written in
one transaction, so a sync token never gets ahead of the objects it covers and no change
is lost to the services that react to it (leave-by).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from carcloud.calendars.models import (
    CalendarAccount,
    CalendarItem,
    Geocode,
    ItemChanges,
    SyncState,
)
from carcloud.events.models import NewEvent


class CalendarStore(Protocol):
    """Calendar accounts of drivers and their synced objects."""

    async def create_account(self, account: CalendarAccount) -> CalendarAccount:
        """Store a new account; NotFoundError if its driver is not of its brand."""
        ...

    async def get_account(self, account_id: str, brand: str | None) -> CalendarAccount:
        """One account; NotFoundError if it is not there for the caller."""
        ...

    async def list_accounts(self, driver_id: str, brand: str | None) -> list[CalendarAccount]:
        """A driver's accounts, oldest first; NotFoundError for a driver the caller cannot see."""
        ...

    async def delete_account(self, account_id: str, brand: str | None) -> None:
        """Remove an account with its objects."""
        ...

    async def claim_due(self, now: int, lease_until: int, limit: int) -> list[CalendarAccount]:
        """Accounts due by `now`, soonest first, each moved to `lease_until` so that no
        other worker claims it meanwhile."""
        ...

    async def item_etags(self, account_id: str) -> dict[str, str]:
        """href -> ETag of the account's stored objects."""
        ...

    async def save_sync(
        self,
        account_id: str,
        changes: ItemChanges,
        state: SyncState,
        events: Sequence[NewEvent] = (),
    ) -> None:
        """Apply a sync's changes, its new state and its events in one transaction; each
        event's `data` gets `vins`, the vehicles whose current driver has the account."""
        ...

    async def save_state(self, account_id: str, state: SyncState) -> None:
        """Record a failed (or skipped) sync: only the state changes."""
        ...

    async def save_secret(self, account_id: str, secret: str) -> None:
        """Replace an account's sealed credentials (a provider rotated its refresh token)."""
        ...

    async def driver_items(self, driver_id: str) -> list[tuple[str, CalendarItem]]:
        """(account id, object) of every account of the driver."""
        ...

    async def item_versions(self, driver_id: str) -> list[tuple[str, str, str]]:
        """(account id, href, ETag) of every object of the driver's accounts: what the
        agenda is made of, read without the objects (cheap enough for every read)."""
        ...

    async def geocodes(self, queries: Sequence[str]) -> dict[str, Geocode]:
        """The geocoder's kept answers for these queries (those asked before), by query."""
        ...

    async def save_geocodes(self, geocodes: Sequence[Geocode]) -> None:
        """Keep the geocoder's answers (a newer one replaces an older one of its query)."""
        ...
