"""Rows of the drivers and calendar tables, shared by both backends: one encoding, one decoding.

The calendar statements are written with `?` placeholders; PostgreSQL runs them through
`rows.numbered` ($1, $2, …).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import orjson

from carcloud.calendars.models import (
    CalendarAccount,
    CalendarItem,
    Geocode,
    SyncReport,
    SyncState,
)
from carcloud.drivers.models import Driver, Preferences, places_json, places_of
from carcloud.errors import NotFoundError
from carcloud.events.models import NewEvent
from carcloud.storage.rows import Row

# Driver fields in table order after id and brand_id; the brand slug comes from a join.
DRIVER_FIELDS = (
    "name", "timezone", "places", "reminder_lead_min", "buffer_min", "precondition",
    "precondition_target_c", "created_at", "updated_at",
)  # fmt: skip
# Account fields in table order after id and driver_id; the brand comes from a join.
ACCOUNT_FIELDS = ("kind", "name", "url", "username", "owner_email", "secret", "created_at")
STATE_FIELDS = (
    "status", "error", "failures", "last_attempt_at", "last_success_at", "next_sync_at",
    "sync_token", "report",
)  # fmt: skip

ACCOUNT_SELECT = (
    f"SELECT a.id, a.driver_id, b.slug, {', '.join('a.' + f for f in ACCOUNT_FIELDS)}, "
    f"{', '.join('a.' + f for f in STATE_FIELDS)} FROM calendar_accounts a "
    "JOIN drivers d ON d.id = a.driver_id JOIN brands b ON b.id = d.brand_id "
)
INSERT_ACCOUNT = (
    f"INSERT INTO calendar_accounts (id, driver_id, {', '.join(ACCOUNT_FIELDS + STATE_FIELDS)}) "
    f"VALUES ({', '.join('?' * (len(ACCOUNT_FIELDS) + len(STATE_FIELDS) + 2))})"
)
# The state's fields, then the account's id.
SAVE_STATE = (
    f"UPDATE calendar_accounts SET {', '.join(f'{name} = ?' for name in STATE_FIELDS)} WHERE id = ?"
)
SAVE_SECRET = "UPDATE calendar_accounts SET secret = ? WHERE id = ?"
DELETE_ACCOUNT = "DELETE FROM calendar_accounts WHERE id = ?"
DELETE_ITEMS = "DELETE FROM calendar_items WHERE account_id = ?"
ACCOUNT_VINS = (
    "SELECT v.vin FROM vehicle_drivers vd JOIN vehicles v ON v.id = vd.vehicle_id "
    "JOIN calendar_accounts a ON a.driver_id = vd.driver_id WHERE a.id = ? ORDER BY v.vin"
)
GEOCODE_SELECT = "SELECT query, lat, lon, label, reason, looked_up_at FROM calendar_geocodes"
SAVE_GEOCODE = (
    "INSERT INTO calendar_geocodes (query, lat, lon, label, reason, looked_up_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (query) DO UPDATE SET "
    "lat = excluded.lat, lon = excluded.lon, label = excluded.label, "
    "reason = excluded.reason, looked_up_at = excluded.looked_up_at"
)


def driver_values(driver: Driver) -> tuple[Any, ...]:
    """The DRIVER_FIELDS of a driver."""
    prefs = driver.preferences
    return (
        driver.name,
        driver.timezone,
        orjson.dumps(places_json(driver.places)).decode(),
        prefs.reminder_lead_min,
        prefs.buffer_min,
        prefs.precondition,
        prefs.precondition_target_c,
        driver.created_at,
        driver.updated_at,
    )


def driver_of(driver_id: str, brand: str, row: Sequence[Any]) -> Driver:
    """A driver from its id, brand slug and DRIVER_FIELDS."""
    name, timezone, places, lead, buffer, precondition, target, created, updated = row
    return Driver(
        id=driver_id,
        brand=brand,
        name=name,
        timezone=timezone,
        places=places_of(orjson.loads(places)),
        preferences=Preferences(int(lead), int(buffer), bool(precondition), float(target)),
        created_at=int(created),
        updated_at=int(updated),
    )


def account_values(account: CalendarAccount) -> tuple[Any, ...]:
    """The ACCOUNT_FIELDS of an account."""
    return (
        account.kind,
        account.name,
        account.url,
        account.username,
        account.owner_email,
        account.secret,
        account.created_at,
    )


def state_values(state: SyncState) -> tuple[Any, ...]:
    """The STATE_FIELDS of a sync state."""
    report = orjson.dumps(state.report.document()).decode() if state.report else None
    return (
        state.status,
        state.error,
        state.failures,
        state.last_attempt_at,
        state.last_success_at,
        state.next_sync_at,
        state.sync_token,
        report,
    )


def account_of(account_id: str, driver_id: str, brand: str, row: Sequence[Any]) -> CalendarAccount:
    """An account from its ids, brand slug, ACCOUNT_FIELDS and STATE_FIELDS."""
    kind, name, url, username, owner_email, secret, created = row[: len(ACCOUNT_FIELDS)]
    status, error, failures, attempt, success, next_sync, token, report = row[len(ACCOUNT_FIELDS) :]
    return CalendarAccount(
        id=account_id,
        driver_id=driver_id,
        brand=brand,
        kind=kind,
        name=name,
        url=url,
        secret=secret,
        username=username,
        owner_email=owner_email,
        created_at=int(created),
        state=SyncState(
            status=status,
            error=error,
            failures=int(failures),
            last_attempt_at=attempt,
            last_success_at=success,
            next_sync_at=int(next_sync),
            sync_token=token,
            report=SyncReport(**orjson.loads(report)) if report else None,
        ),
    )


def account_row(row: Row) -> CalendarAccount:
    """An account from a row of ACCOUNT_SELECT."""
    fields = [row[index] for index in range(3, 3 + len(ACCOUNT_FIELDS) + len(STATE_FIELDS))]
    return account_of(row[0], row[1], row[2], fields)


def account_values_all(account: CalendarAccount) -> tuple[Any, ...]:
    """The parameters of INSERT_ACCOUNT."""
    return account.id, account.driver_id, *account_values(account), *state_values(account.state)


def geocode_values(geocodes: Sequence[Geocode]) -> list[tuple[Any, ...]]:
    """The parameters of SAVE_GEOCODE, one tuple a geocode."""
    return [(g.query, g.lat, g.lon, g.label, g.reason, g.looked_up_at) for g in geocodes]


def visible_where(account_id: str, brand: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause on ACCOUNT_SELECT for an account, within `brand` unless None."""
    if brand is None:
        return "WHERE a.id = ?", [account_id]
    return "WHERE a.id = ? AND b.slug = ?", [account_id, brand]


def found_account(found: Sequence[CalendarAccount], account_id: str) -> CalendarAccount:
    """The account a lookup found, NotFoundError if none."""
    if not found:
        raise NotFoundError(f"calendar account {account_id} not found")
    return found[0]


def with_vins(events: Sequence[NewEvent], vins: list[str]) -> list[NewEvent]:
    """Calendar events with the vehicles their driver drives now (`vins` in `data`)."""
    return [dataclasses.replace(event, data={**event.data, "vins": vins}) for event in events]


class CalendarReads(ABC):
    """The reads of a CalendarStore that are the same SQL on both backends, over the
    backend's query (`?` placeholders)."""

    @abstractmethod
    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    async def get_account(self, account_id: str, brand: str | None) -> CalendarAccount:
        where, params = visible_where(account_id, brand)
        rows = await self._rows(ACCOUNT_SELECT + where, params)
        return found_account([account_row(row) for row in rows], account_id)

    async def item_etags(self, account_id: str) -> dict[str, str]:
        rows = await self._rows(
            "SELECT href, etag FROM calendar_items WHERE account_id = ?", (account_id,)
        )
        return {str(row[0]): str(row[1]) for row in rows}

    async def driver_items(self, driver_id: str) -> list[tuple[str, CalendarItem]]:
        rows = await self._rows(
            "SELECT i.account_id, i.href, i.etag, i.ics FROM calendar_items i "
            "JOIN calendar_accounts a ON a.id = i.account_id WHERE a.driver_id = ? "
            "ORDER BY i.account_id, i.href",
            (driver_id,),
        )
        return [(row[0], CalendarItem(row[1], row[2], row[3])) for row in rows]

    async def item_versions(self, driver_id: str) -> list[tuple[str, str, str]]:
        rows = await self._rows(
            "SELECT i.account_id, i.href, i.etag FROM calendar_items i "
            "JOIN calendar_accounts a ON a.id = i.account_id WHERE a.driver_id = ?",
            (driver_id,),
        )
        return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]
