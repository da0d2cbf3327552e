"""Rows of the drivers and calendar tables, shared by both backends: one encoding, one decoding."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import orjson

from carcloud.calendars.models import CalendarAccount, SyncReport, SyncState
from carcloud.drivers.models import Driver, Preferences, places_json, places_of
from carcloud.events.models import NewEvent

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


def with_vins(events: Sequence[NewEvent], vins: list[str]) -> list[NewEvent]:
    """Calendar events with the vehicles their driver drives now (`vins` in `data`)."""
    return [dataclasses.replace(event, data={**event.data, "vins": vins}) for event in events]
