"""CalendarStore for SQLite: calendar accounts with their sync state, and synced objects."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from carcloud.calendars.models import CalendarAccount, Geocode, ItemChanges, SyncState
from carcloud.events.models import NewEvent
from carcloud.storage import calendar_rows as sql
from carcloud.storage.sqlite.drivers import visible_driver
from carcloud.storage.sqlite.engine import SqliteStore
from carcloud.storage.sqlite.events import append_events


def _accounts(conn: sqlite3.Connection, where: str, params: list[Any]) -> list[CalendarAccount]:
    rows = conn.execute(sql.ACCOUNT_SELECT + where, params)
    return [sql.account_row(row) for row in rows]


class SqliteCalendarStore(SqliteStore, sql.CalendarReads):
    """CalendarStore over the shared SQLite engine."""

    async def create_account(self, account: CalendarAccount) -> CalendarAccount:
        def write(conn: sqlite3.Connection) -> CalendarAccount:
            visible_driver(conn, account.driver_id, account.brand)
            conn.execute(sql.INSERT_ACCOUNT, sql.account_values_all(account))
            return account

        return await self.engine.write(write)

    async def list_accounts(self, driver_id: str, brand: str | None) -> list[CalendarAccount]:
        def query(conn: sqlite3.Connection) -> list[CalendarAccount]:
            visible_driver(conn, driver_id, brand)
            return _accounts(conn, "WHERE a.driver_id = ? ORDER BY a.created_at, a.id", [driver_id])

        return await self.engine.read(query)

    async def delete_account(self, account_id: str, brand: str | None) -> None:
        def write(conn: sqlite3.Connection) -> None:
            sql.found_account(_accounts(conn, *sql.visible_where(account_id, brand)), account_id)
            conn.execute(sql.DELETE_ACCOUNT, (account_id,))

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

    async def save_sync(
        self,
        account_id: str,
        changes: ItemChanges,
        state: SyncState,
        events: Sequence[NewEvent] = (),
    ) -> None:
        def write(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(sql.SAVE_STATE, (*sql.state_values(state), account_id))
            if cursor.rowcount == 0:
                return  # deleted while it synced: nothing to keep
            if changes.replace_all:
                conn.execute(sql.DELETE_ITEMS, (account_id,))
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
                vins = [str(row[0]) for row in conn.execute(sql.ACCOUNT_VINS, (account_id,))]
                append_events(self.engine, conn, sql.with_vins(events, vins))

        await self.engine.write(write)

    async def save_state(self, account_id: str, state: SyncState) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(sql.SAVE_STATE, (*sql.state_values(state), account_id))

        await self.engine.write(write)

    async def save_secret(self, account_id: str, secret: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(sql.SAVE_SECRET, (secret, account_id))

        await self.engine.write(write)

    async def geocodes(self, queries: Sequence[str]) -> dict[str, Geocode]:
        def query(conn: sqlite3.Connection) -> dict[str, Geocode]:
            found: dict[str, Geocode] = {}
            for start in range(0, len(queries), 500):
                part = list(queries[start : start + 500])
                rows = conn.execute(
                    f"{sql.GEOCODE_SELECT} WHERE query IN ({', '.join('?' * len(part))})", part
                )
                for row in rows:
                    found[row[0]] = Geocode(*row)
            return found

        return await self.engine.read(query)

    async def save_geocodes(self, geocodes: Sequence[Geocode]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(sql.SAVE_GEOCODE, sql.geocode_values(geocodes))

        await self.engine.write(write)
