"""CalendarStore for PostgreSQL: calendar accounts with their sync state, and synced objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from carcloud.calendars.models import CalendarAccount, Geocode, ItemChanges, SyncState
from carcloud.events.models import NewEvent
from carcloud.storage import calendar_rows as sql
from carcloud.storage.postgres.drivers import visible_driver
from carcloud.storage.postgres.engine import Conn, PostgresStore, Tx
from carcloud.storage.postgres.events import append_events
from carcloud.storage.rows import numbered


async def _accounts(conn: Conn, where: str, *args: Any) -> list[CalendarAccount]:
    """The accounts of ACCOUNT_SELECT `where` (`?` placeholders)."""
    rows = await conn.fetch(numbered(sql.ACCOUNT_SELECT + where), *args)
    return [sql.account_row(row) for row in rows]


class PostgresCalendarStore(PostgresStore, sql.CalendarReads):
    """CalendarStore over the shared PostgreSQL engine."""

    async def create_account(self, account: CalendarAccount) -> CalendarAccount:
        async def write(tx: Tx) -> CalendarAccount:
            await visible_driver(tx.conn, account.driver_id, account.brand)
            await tx.conn.execute(numbered(sql.INSERT_ACCOUNT), *sql.account_values_all(account))
            return account

        return await self.engine.write(write)

    async def list_accounts(self, driver_id: str, brand: str | None) -> list[CalendarAccount]:
        async def query(conn: Conn) -> list[CalendarAccount]:
            await visible_driver(conn, driver_id, brand)
            return await _accounts(
                conn, "WHERE a.driver_id = ? ORDER BY a.created_at, a.id", driver_id
            )

        return await self.engine.read(query)

    async def delete_account(self, account_id: str, brand: str | None) -> None:
        async def write(tx: Tx) -> None:
            where, params = sql.visible_where(account_id, brand)
            sql.found_account(await _accounts(tx.conn, where, *params), account_id)
            await tx.conn.execute(numbered(sql.DELETE_ACCOUNT), account_id)

        await self.engine.write(write)

    async def claim_due(self, now: int, lease_until: int, limit: int) -> list[CalendarAccount]:
        async def write(tx: Tx) -> list[CalendarAccount]:
            # SKIP LOCKED: workers in several processes claim different accounts at once.
            ids = await tx.conn.fetch(
                "UPDATE calendar_accounts SET next_sync_at = $2 WHERE id IN ("
                "SELECT id FROM calendar_accounts WHERE next_sync_at <= $1 "
                "ORDER BY next_sync_at LIMIT $3 FOR UPDATE SKIP LOCKED) RETURNING id",
                now,
                lease_until,
                limit,
            )
            return await _accounts(
                tx.conn, "WHERE a.id = ANY(?::text[]) ORDER BY a.id", [row[0] for row in ids]
            )

        return await self.engine.write(write)

    async def save_sync(
        self,
        account_id: str,
        changes: ItemChanges,
        state: SyncState,
        events: Sequence[NewEvent] = (),
    ) -> None:
        async def write(tx: Tx) -> None:
            status = await tx.conn.execute(
                numbered(sql.SAVE_STATE), *sql.state_values(state), account_id
            )
            if status.endswith(" 0"):
                return  # deleted while it synced: nothing to keep
            if changes.replace_all:
                await tx.conn.execute(numbered(sql.DELETE_ITEMS), account_id)
            if changes.deletes:
                await tx.conn.execute(
                    "DELETE FROM calendar_items WHERE account_id = $1 AND href = ANY($2::text[])",
                    account_id,
                    list(changes.deletes),
                )
            if changes.upserts:
                await tx.conn.executemany(
                    "INSERT INTO calendar_items (account_id, href, etag, ics) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (account_id, href) "
                    "DO UPDATE SET etag = EXCLUDED.etag, ics = EXCLUDED.ics",
                    [(account_id, item.href, item.etag, item.ics) for item in changes.upserts],
                )
            if events:
                rows = await tx.conn.fetch(numbered(sql.ACCOUNT_VINS), account_id)
                await append_events(tx, sql.with_vins(events, [str(row[0]) for row in rows]))

        await self.engine.write(write)

    async def save_state(self, account_id: str, state: SyncState) -> None:
        async def write(tx: Tx) -> None:
            await tx.conn.execute(numbered(sql.SAVE_STATE), *sql.state_values(state), account_id)

        await self.engine.write(write)

    async def save_secret(self, account_id: str, secret: str) -> None:
        async def write(tx: Tx) -> None:
            await tx.conn.execute(numbered(sql.SAVE_SECRET), secret, account_id)

        await self.engine.write(write)

    async def geocodes(self, queries: Sequence[str]) -> dict[str, Geocode]:
        async def query(conn: Conn) -> dict[str, Geocode]:
            rows = await conn.fetch(
                f"{sql.GEOCODE_SELECT} WHERE query = ANY($1::text[])", list(queries)
            )
            return {row[0]: Geocode(*row) for row in rows}

        return await self.engine.read(query)

    async def save_geocodes(self, geocodes: Sequence[Geocode]) -> None:
        async def write(tx: Tx) -> None:
            await tx.conn.executemany(numbered(sql.SAVE_GEOCODE), sql.geocode_values(geocodes))

        await self.engine.write(write)
