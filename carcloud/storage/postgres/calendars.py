"""CalendarStore for PostgreSQL: calendar accounts with their sync state, and synced objects."""

from __future__ import annotations

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
from carcloud.storage.postgres.drivers import visible_driver
from carcloud.storage.postgres.engine import Conn, PostgresEngine, Tx
from carcloud.storage.postgres.events import append_events

_SELECT = (
    f"SELECT a.id, a.driver_id, b.slug, {', '.join('a.' + f for f in ACCOUNT_FIELDS)}, "
    f"{', '.join('a.' + f for f in STATE_FIELDS)} FROM calendar_accounts a "
    "JOIN drivers d ON d.id = a.driver_id JOIN brands b ON b.id = d.brand_id "
)
# $1 is the account id, the state's fields follow.
_STATE_SET = ", ".join(f"{name} = ${n}" for n, name in enumerate(STATE_FIELDS, 2))


async def _accounts(conn: Conn, where: str, *args: Any) -> list[CalendarAccount]:
    rows = await conn.fetch(_SELECT + where, *args)
    return [account_of(row[0], row[1], row[2], list(row)[3:]) for row in rows]


async def _visible(conn: Conn, account_id: str, brand: str | None) -> CalendarAccount:
    if brand is None:
        found = await _accounts(conn, "WHERE a.id = $1", account_id)
    else:
        found = await _accounts(conn, "WHERE a.id = $1 AND b.slug = $2", account_id, brand)
    if not found:
        raise NotFoundError(f"calendar account {account_id} not found")
    return found[0]


class PostgresCalendarStore:
    """CalendarStore over the shared PostgreSQL engine."""

    def __init__(self, engine: PostgresEngine) -> None:
        self.engine = engine

    async def create_account(self, account: CalendarAccount) -> CalendarAccount:
        names = ", ".join(ACCOUNT_FIELDS + STATE_FIELDS)
        marks = ", ".join(f"${n}" for n in range(1, len(ACCOUNT_FIELDS) + len(STATE_FIELDS) + 3))

        async def write(tx: Tx) -> CalendarAccount:
            await visible_driver(tx.conn, account.driver_id, account.brand)
            await tx.conn.execute(
                f"INSERT INTO calendar_accounts (id, driver_id, {names}) VALUES ({marks})",
                account.id,
                account.driver_id,
                *account_values(account),
                *state_values(account.state),
            )
            return account

        return await self.engine.write(write)

    async def get_account(self, account_id: str, brand: str | None) -> CalendarAccount:
        return await self.engine.read(lambda conn: _visible(conn, account_id, brand))

    async def list_accounts(self, driver_id: str, brand: str | None) -> list[CalendarAccount]:
        async def query(conn: Conn) -> list[CalendarAccount]:
            await visible_driver(conn, driver_id, brand)
            return await _accounts(
                conn, "WHERE a.driver_id = $1 ORDER BY a.created_at, a.id", driver_id
            )

        return await self.engine.read(query)

    async def delete_account(self, account_id: str, brand: str | None) -> None:
        async def write(tx: Tx) -> None:
            await _visible(tx.conn, account_id, brand)
            await tx.conn.execute("DELETE FROM calendar_accounts WHERE id = $1", account_id)

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
                tx.conn, "WHERE a.id = ANY($1::text[]) ORDER BY a.id", [row[0] for row in ids]
            )

        return await self.engine.write(write)

    async def item_etags(self, account_id: str) -> dict[str, str]:
        async def query(conn: Conn) -> dict[str, str]:
            rows = await conn.fetch(
                "SELECT href, etag FROM calendar_items WHERE account_id = $1", account_id
            )
            return {row[0]: row[1] for row in rows}

        return await self.engine.read(query)

    async def save_sync(
        self,
        account_id: str,
        changes: ItemChanges,
        state: SyncState,
        events: Sequence[NewEvent] = (),
    ) -> None:
        async def write(tx: Tx) -> None:
            status = await tx.conn.execute(
                f"UPDATE calendar_accounts SET {_STATE_SET} WHERE id = $1",
                account_id,
                *state_values(state),
            )
            if status.endswith(" 0"):
                return  # deleted while it synced: nothing to keep
            if changes.replace_all:
                await tx.conn.execute(
                    "DELETE FROM calendar_items WHERE account_id = $1", account_id
                )
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
                rows = await tx.conn.fetch(
                    "SELECT v.vin FROM vehicle_drivers vd JOIN vehicles v ON v.id = vd.vehicle_id "
                    "JOIN calendar_accounts a ON a.driver_id = vd.driver_id WHERE a.id = $1 "
                    "ORDER BY v.vin",
                    account_id,
                )
                await append_events(tx, with_vins(events, [str(row[0]) for row in rows]))

        await self.engine.write(write)

    async def save_state(self, account_id: str, state: SyncState) -> None:
        async def write(tx: Tx) -> None:
            await tx.conn.execute(
                f"UPDATE calendar_accounts SET {_STATE_SET} WHERE id = $1",
                account_id,
                *state_values(state),
            )

        await self.engine.write(write)

    async def save_secret(self, account_id: str, secret: str) -> None:
        async def write(tx: Tx) -> None:
            await tx.conn.execute(
                "UPDATE calendar_accounts SET secret = $2 WHERE id = $1", account_id, secret
            )

        await self.engine.write(write)

    async def driver_items(self, driver_id: str) -> list[tuple[str, CalendarItem]]:
        async def query(conn: Conn) -> list[tuple[str, CalendarItem]]:
            rows = await conn.fetch(
                "SELECT i.account_id, i.href, i.etag, i.ics FROM calendar_items i "
                "JOIN calendar_accounts a ON a.id = i.account_id WHERE a.driver_id = $1 "
                "ORDER BY i.account_id, i.href",
                driver_id,
            )
            return [(row[0], CalendarItem(row[1], row[2], row[3])) for row in rows]

        return await self.engine.read(query)

    async def item_versions(self, driver_id: str) -> list[tuple[str, str, str]]:
        async def query(conn: Conn) -> list[tuple[str, str, str]]:
            rows = await conn.fetch(
                "SELECT i.account_id, i.href, i.etag FROM calendar_items i "
                "JOIN calendar_accounts a ON a.id = i.account_id WHERE a.driver_id = $1",
                driver_id,
            )
            return [(str(row[0]), str(row[1]), str(row[2])) for row in rows]

        return await self.engine.read(query)

    async def geocodes(self, queries: Sequence[str]) -> dict[str, Geocode]:
        async def query(conn: Conn) -> dict[str, Geocode]:
            rows = await conn.fetch(
                "SELECT query, lat, lon, label, reason, looked_up_at FROM calendar_geocodes "
                "WHERE query = ANY($1::text[])",
                list(queries),
            )
            return {row[0]: Geocode(*row) for row in rows}

        return await self.engine.read(query)

    async def save_geocodes(self, geocodes: Sequence[Geocode]) -> None:
        async def write(tx: Tx) -> None:
            await tx.conn.executemany(
                "INSERT INTO calendar_geocodes (query, lat, lon, label, reason, looked_up_at) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (query) DO UPDATE SET "
                "lat = EXCLUDED.lat, lon = EXCLUDED.lon, label = EXCLUDED.label, "
                "reason = EXCLUDED.reason, looked_up_at = EXCLUDED.looked_up_at",
                [(g.query, g.lat, g.lon, g.label, g.reason, g.looked_up_at) for g in geocodes],
            )

        await self.engine.write(write)
