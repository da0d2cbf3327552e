"""CalendarStore for SQLite: calendar accounts with their sync state, and synced objects."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from carcloud.calendars.models import (
    CalendarAccount,
    CalendarItem,
    Geocode,
    ItemChanges,
    SyncState,
)
from carcloud.errors import NotFoundError
from carcloud.events.models import NewEvent
from carcloud.storage.calendar_rows import (
    ACCOUNT_FIELDS,
    STATE_FIELDS,
    account_of,
    account_values,
    state_values,
    with_vins,
)
from carcloud.storage.sqlite.drivers import visible_driver
from carcloud.storage.sqlite.engine import SqliteEngine
from carcloud.storage.sqlite.events import append_events

_SELECT = (
    f"SELECT a.id, a.driver_id, b.slug, {', '.join('a.' + f for f in ACCOUNT_FIELDS)}, "
    f"{', '.join('a.' + f for f in STATE_FIELDS)} FROM calendar_accounts a "
    "JOIN drivers d ON d.id = a.driver_id JOIN brands b ON b.id = d.brand_id "
)
_STATE_SET = ", ".join(f"{name} = ?" for name in STATE_FIELDS)


def _accounts(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[CalendarAccount]:
    rows = conn.execute(_SELECT + where, params)
    return [account_of(row[0], row[1], row[2], row[3:]) for row in rows]


def _visible(conn: sqlite3.Connection, account_id: str, brand: str | None) -> CalendarAccount:
    where, params = "WHERE a.id = ?", [account_id]
    if brand is not None:
        where += " AND b.slug = ?"
        params.append(brand)
    found = _accounts(conn, where, params)
    if not found:
        raise NotFoundError(f"calendar account {account_id} not found")
    return found[0]


class SqliteCalendarStore:
    """CalendarStore over the shared SQLite engine."""

    def __init__(self, engine: SqliteEngine) -> None:
        self.engine = engine

    async def create_account(self, account: CalendarAccount) -> CalendarAccount:
        names = ", ".join(ACCOUNT_FIELDS + STATE_FIELDS)
        marks = ", ".join("?" * (len(ACCOUNT_FIELDS) + len(STATE_FIELDS) + 2))

        def write(conn: sqlite3.Connection) -> CalendarAccount:
            visible_driver(conn, account.driver_id, account.brand)
            conn.execute(
                f"INSERT INTO calendar_accounts (id, driver_id, {names}) VALUES ({marks})",
                (
                    account.id,
                    account.driver_id,
                    *account_values(account),
                    *state_values(account.state),
                ),
            )
            return account

        return await self.engine.write(write)

    async def get_account(self, account_id: str, brand: str | None) -> CalendarAccount:
        return await self.engine.read(lambda conn: _visible(conn, account_id, brand))

    async def list_accounts(self, driver_id: str, brand: str | None) -> list[CalendarAccount]:
        def query(conn: sqlite3.Connection) -> list[CalendarAccount]:
            visible_driver(conn, driver_id, brand)
            return _accounts(conn, "WHERE a.driver_id = ? ORDER BY a.created_at, a.id", [driver_id])

        return await self.engine.read(query)

    async def delete_account(self, account_id: str, brand: str | None) -> None:
        def write(conn: sqlite3.Connection) -> None:
            _visible(conn, account_id, brand)
            conn.execute("DELETE FROM calendar_accounts WHERE id = ?", (account_id,))

        await self.engine.write(write)

    async def claim_due(self, now: int, lease_until: int, limit: int) -> list[CalendarAccount]:
        def write(conn: sqlite3.Connection) -> list[CalendarAccount]:
            due = _accounts(
                conn, "WHERE a.next_sync_at <= ? ORDER BY a.next_sync_at LIMIT ?", [now, limit]
            )
            conn.executemany(
                "UPDATE calendar_accounts SET next_sync_at = ? WHERE id = ?",
                [(lease_until, account.id) for account in due],
            )
            return due

        return await self.engine.write(write)

    async def item_etags(self, account_id: str) -> dict[str, str]:
        def query(conn: sqlite3.Connection) -> dict[str, str]:
            rows = conn.execute(
                "SELECT href, etag FROM calendar_items WHERE account_id = ?", (account_id,)
            )
            return {str(href): str(etag) for href, etag in rows}

        return await self.engine.read(query)

    async def save_sync(
        self,
        account_id: str,
        changes: ItemChanges,
        state: SyncState,
        events: Sequence[NewEvent] = (),
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                f"UPDATE calendar_accounts SET {_STATE_SET} WHERE id = ?",
                (*state_values(state), account_id),
            )
            if cursor.rowcount == 0:
                return  # deleted while it synced: nothing to keep
            if changes.replace_all:
                conn.execute("DELETE FROM calendar_items WHERE account_id = ?", (account_id,))
            conn.executemany(
                "DELETE FROM calendar_items WHERE account_id = ? AND href = ?",
                [(account_id, href) for href in changes.deletes],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO calendar_items (account_id, href, etag, ics) "
                "VALUES (?, ?, ?, ?)",
                [(account_id, item.href, item.etag, item.ics) for item in changes.upserts],
            )
            if events:
                vins = [
                    str(row[0])
                    for row in conn.execute(
                        "SELECT v.vin FROM vehicle_drivers vd JOIN vehicles v ON v.id = "
                        "vd.vehicle_id JOIN calendar_accounts a ON a.driver_id = vd.driver_id "
                        "WHERE a.id = ? ORDER BY v.vin",
                        (account_id,),
                    )
                ]
                append_events(self.engine, conn, with_vins(events, vins))

        await self.engine.write(write)

    async def save_state(self, account_id: str, state: SyncState) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                f"UPDATE calendar_accounts SET {_STATE_SET} WHERE id = ?",
                (*state_values(state), account_id),
            )

        await self.engine.write(write)

    async def save_secret(self, account_id: str, secret: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE calendar_accounts SET secret = ? WHERE id = ?", (secret, account_id)
            )

        await self.engine.write(write)

    async def driver_items(self, driver_id: str) -> list[tuple[str, CalendarItem]]:
        def query(conn: sqlite3.Connection) -> list[tuple[str, CalendarItem]]:
            rows = conn.execute(
                "SELECT i.account_id, i.href, i.etag, i.ics FROM calendar_items i "
                "JOIN calendar_accounts a ON a.id = i.account_id WHERE a.driver_id = ? "
                "ORDER BY i.account_id, i.href",
                (driver_id,),
            )
            return [(row[0], CalendarItem(row[1], row[2], row[3])) for row in rows]

        return await self.engine.read(query)

    async def item_versions(self, driver_id: str) -> list[tuple[str, str, str]]:
        def query(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
            rows = conn.execute(
                "SELECT i.account_id, i.href, i.etag FROM calendar_items i "
                "JOIN calendar_accounts a ON a.id = i.account_id WHERE a.driver_id = ?",
                (driver_id,),
            )
            return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]

        return await self.engine.read(query)

    async def geocodes(self, queries: Sequence[str]) -> dict[str, Geocode]:
        def query(conn: sqlite3.Connection) -> dict[str, Geocode]:
            found: dict[str, Geocode] = {}
            for start in range(0, len(queries), 500):
                part = list(queries[start : start + 500])
                rows = conn.execute(
                    "SELECT query, lat, lon, label, reason, looked_up_at FROM calendar_geocodes "
                    f"WHERE query IN ({', '.join('?' * len(part))})",
                    part,
                )
                for row in rows:
                    found[row[0]] = Geocode(*row)
            return found

        return await self.engine.read(query)

    async def save_geocodes(self, geocodes: Sequence[Geocode]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO calendar_geocodes "
                "(query, lat, lon, label, reason, looked_up_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(g.query, g.lat, g.lon, g.label, g.reason, g.looked_up_at) for g in geocodes],
            )

        await self.engine.write(write)
